import { z } from 'zod';

/** Agent ids appear in headers, paths and SQL: printable, no whitespace, bounded. */
export const agentIdSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
  .describe('an agent id: printable ASCII without spaces, at most 200 characters');

/**
 * What a credential lets its holder do (the values of dispatch_credentials.role).
 * worker: register and heartbeat itself, work on its own attempts. requester: create tasks, read
 * and cancel its own. observer: read everything, change nothing. admin: everything.
 */
export type Role = 'worker' | 'requester' | 'observer' | 'admin';

/** Who is calling, as the authentication middleware established it. */
export interface Caller {
  /** The agent the caller acts as: the credential's agent, or X-Agent-ID in header mode. */
  agent: string;
  admin: boolean;
  /** Token mode: the credential's one role. Header mode (a trusted network): worker and requester, plus admin with the admin token. */
  roles: ReadonlySet<Role>;
  /** Observers, admins, and every caller in header mode (v1: any agent reads any task). */
  readsAllTasks: boolean;
  /** The scopes a credential is limited to; empty means any scope. */
  scopes: readonly string[];
  /** Recorded in audit fields (cancelled_by, drained_by): the credential id, "bootstrap" for the admin token, or the agent in header mode. */
  actor: string;
}

export const hasRole = (caller: Caller, ...roles: Role[]): boolean => caller.admin || roles.some((role) => caller.roles.has(role));

/** Whether the caller reads every task, or only the tasks that concern it. */
export const readsEverything = (caller: Caller): boolean => caller.readsAllTasks;

/** Whether a credential limited to some scopes covers this one. */
export const coversScope = (caller: Caller, scope: string): boolean => caller.scopes.length === 0 || caller.scopes.includes(scope);
