import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import type { Caller } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';
import { retryTransientConflicts } from '../db/retry.js';
import { cancelTasks } from './task.queries.js';
import { TASK_STATUSES, TERMINAL_STATUSES, type TaskStatus } from '../db/columns.js';
import { lockBatch, REQUEUEABLE_STATUSES, requeueTasks, type BulkFilter } from './bulk.queries.js';
import type { BulkActionInput } from './task.schemas.js';
import { getTask } from './task.service.js';

const isTerminal = (status: TaskStatus) => (TERMINAL_STATUSES as readonly TaskStatus[]).includes(status);

/** Rows locked per transaction: small enough that a racing assigner waits milliseconds at most. */
const BATCH = 500;
/**
 * After each batch the walk rests this many times as long as the batch took: a bulk action of
 * 100,000 tasks is background work, and the database time it leaves is what keeps the swarm's
 * other work (creates, assignment, completions) on its usual latency meanwhile.
 */
const REST_PER_BATCH_TIME = 1;

export type BulkAction = 'cancel' | 'requeue';

/** The answer of a bulk cancel or requeue (`BulkOutcome` in openapi.json). */
export const bulkOutcomeJsonSchema = z
  .object({
    changed: z.number().int().describe('tasks this call cancelled or requeued'),
    limit_reached: z.boolean().describe('true when `limit` stopped the walk: more tasks may match; call again'),
  })
  .meta({ id: 'BulkOutcome' });
export type BulkOutcome = z.infer<typeof bulkOutcomeJsonSchema>;

function toFilter(input: BulkActionInput['filter']): BulkFilter {
  return {
    ids: input.ids,
    scope: input.scope,
    statuses: input.status === undefined ? undefined : Array.isArray(input.status) ? input.status : [input.status],
    requester: input.requester,
    assignee: input.assignee,
    created_before: input.created_before === undefined ? undefined : new Date(input.created_before),
    created_after: input.created_after === undefined ? undefined : new Date(input.created_after),
  };
}

/**
 * Cancels (unfinished) or requeues (failed, timed-out) up to `limit` tasks matching the filter, a
 * batch per transaction, each changed task with its audit event (and so its NATS event), resting
 * between batches. Admins only: a bulk action reaches into every requester's work.
 */
export async function runBulkAction(db: Db, caller: Caller, action: BulkAction, input: BulkActionInput): Promise<BulkOutcome> {
  if (!caller.admin) throw new DispatchError('forbidden', `bulk ${action} needs an admin credential`);
  const filter = toFilter(input.filter);
  const allowed: readonly TaskStatus[] = action === 'cancel' ? TASK_STATUSES.filter((s) => !isTerminal(s)) : REQUEUEABLE_STATUSES;
  const refused = filter.statuses?.filter((status) => !allowed.includes(status)) ?? [];
  if (refused.length > 0) {
    throw new DispatchError('validation_failed', 'invalid request body: filter.status', [
      { field: 'filter.status', message: `${action} acts only on tasks that are ${allowed.join(', ')}; not ${refused.join(', ')}` },
    ]);
  }
  const which = action === 'cancel' ? 'open' : 'requeueable';
  const apply = async (tx: Db, ids: string[]) =>
    action === 'cancel' ? (await cancelTasks(tx, ids, caller.actor)).length : (await requeueTasks(tx, ids, caller.actor)).length;
  let after: string | null = null;
  let changed = 0;
  while (changed < input.limit) {
    const size = Math.min(BATCH, input.limit - changed);
    const cursor: string | null = after;
    const started = performance.now();
    const step = await retryTransientConflicts(db, () =>
      db.transaction().execute(async (tx) => {
        const ids = await lockBatch(tx, filter, cursor, which, size);
        if (ids.length === 0) return null;
        return { last: ids[ids.length - 1] as string, changed: await apply(tx, ids) };
      }),
    );
    if (step === null) return { changed, limit_reached: false };
    after = step.last;
    changed += step.changed;
    if (changed < input.limit) await sleep((performance.now() - started) * REST_PER_BATCH_TIME);
  }
  return { changed, limit_reached: true };
}

/** Requeues one failed or timed-out task (admin), answering 409 for a task in any other state. */
export async function requeueTask(db: Db, caller: Caller, id: string): Promise<void> {
  if (!caller.admin) throw new DispatchError('forbidden', 'requeueing a task needs an admin credential');
  const [requeued] = await retryTransientConflicts(db, () => requeueTasks(db, [id], caller.actor));
  if (requeued !== undefined) return;
  const task = await getTask(db, id);
  throw new DispatchError('conflict', `cannot requeue task ${id}: it is ${task.status}; only failed or timed-out tasks go back to the queue`);
}
