import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { TERMINAL_STATUSES, type TaskStatus } from '../db/columns.js';

/**
 * The SQL of bulk cancel and requeue. A bulk action walks the matching tasks in id order (ids are
 * time-ordered UUIDs, so this is creation order on the primary key) one short batch per
 * transaction: each batch locks at most `batch` rows for a few milliseconds, so the assigners
 * and workers racing it wait at most that long, and a huge action never holds a lock for its
 * whole run. Rows are locked with a plain FOR UPDATE, not SKIP LOCKED: a row the assigner holds
 * for a moment is waited for, not silently left out of the action.
 */

export interface BulkFilter {
  ids?: string[];
  scope?: string;
  statuses?: TaskStatus[];
  requester?: string;
  assignee?: string;
  created_before?: Date;
  created_after?: Date;
}

/** Tasks a requeue may put back: the ones that ended without a result. */
export const REQUEUEABLE_STATUSES = ['failed', 'timeout'] as const satisfies readonly TaskStatus[];

function matching(filter: BulkFilter, after: string | null, which: 'open' | 'requeueable') {
  const conditions = [
    which === 'open'
      ? sql`status <> ALL (${[...TERMINAL_STATUSES]}::text[])`
      : sql`status = ANY (${[...REQUEUEABLE_STATUSES]}::text[])`,
  ];
  if (after !== null) conditions.push(sql`id > ${after}::uuid`);
  if (filter.ids) conditions.push(sql`id = ANY (${filter.ids}::uuid[])`);
  if (filter.statuses) conditions.push(sql`status = ANY (${filter.statuses}::text[])`);
  if (filter.scope !== undefined) conditions.push(sql`scope = ${filter.scope}`);
  if (filter.requester !== undefined) conditions.push(sql`requester = ${filter.requester}`);
  if (filter.assignee !== undefined) conditions.push(sql`assignee = ${filter.assignee}`);
  if (filter.created_before) conditions.push(sql`created_at < ${filter.created_before}`);
  if (filter.created_after) conditions.push(sql`created_at >= ${filter.created_after}`);
  return sql.join(conditions, sql` AND `);
}

/** Locks the next batch of matching tasks after `after`, in id order. */
export async function lockBatch(tx: Db, filter: BulkFilter, after: string | null, which: 'open' | 'requeueable', batch: number): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    SELECT id FROM dispatch_tasks WHERE ${matching(filter, after, which)}
     ORDER BY id LIMIT ${batch}
       FOR UPDATE`.execute(tx);
  return rows.map((r) => r.id);
}

/**
 * Puts failed and timed-out tasks back to pending as if new: a fresh retry and reassignment
 * budget, no error, result, backoff or avoided agent. The next assignment is a new attempt
 * (attempt counts on), so a late call from the old attempt's agent is still fenced off.
 * The pending transition fires the same wake-up trigger as a new task.
 */
export async function requeueTasks(db: Db, ids: readonly string[], by: string): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    WITH was AS (
      SELECT id, status, error FROM dispatch_tasks WHERE id = ANY (${ids}::uuid[]) FOR UPDATE
    ), t AS (
      UPDATE dispatch_tasks d
         SET status = 'pending', retry_count = 0, reassign_count = 0, error = NULL, result = NULL,
             completed_at = NULL, not_before = NULL, avoid_agent = NULL, deadline_at = NULL,
             assigned_at = NULL, started_at = NULL, last_progress_at = NULL, start_alarm_at = NULL
        FROM was
       WHERE d.id = was.id AND was.status = ANY (${[...REQUEUEABLE_STATUSES]}::text[])
      RETURNING d.id, d.attempt, was.status AS previous_status, was.error AS previous_error
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'requeued', ${by}::text, attempt,
             jsonb_build_object('task_id', id, 'requeued_by', ${by}::text,
                                'previous_status', previous_status, 'previous_error', previous_error)
        FROM t ORDER BY id
    )
    SELECT id FROM t`.execute(db);
  return rows.map((r) => r.id);
}
