/**
 * The values the CHECK constraints of db/migrations allow in text columns, as TypeScript types.
 * The generated table types (src/db/generated/database.ts, via db/dump-schema.ts) use them, since
 * the database reports these columns only as text. test/integration/contract.test.ts checks them
 * against the constraints.
 */

export const TASK_STATUSES = ['waiting', 'pending', 'assigned', 'running', 'completed', 'failed', 'cancelled', 'timeout'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled', 'timeout'] as const satisfies readonly TaskStatus[];

export const AGENT_STATUSES = ['ready', 'sleeping', 'starting', 'busy', 'degraded', 'stopped', 'unknown'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

/** standalone: the agent registers itself over REST; warren: synced from Warren and PromptForge. */
export const AGENT_SOURCES = ['standalone', 'warren'] as const;
export type AgentSource = (typeof AGENT_SOURCES)[number];

/** What a credential lets its holder do (docs/SECURITY.md). */
export const CREDENTIAL_ROLES = ['worker', 'requester', 'observer', 'admin'] as const;
export type CredentialRole = (typeof CREDENTIAL_ROLES)[number];
