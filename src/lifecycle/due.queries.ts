import { sql } from 'kysely';
import type { Db } from '../db/database.js';

/**
 * Tasks that wait for a time (migration 0012): delayed tasks and retries in backoff wait for
 * not_before, tasks with an expiry for start_by. The due timer (due-timer.ts) reads the next
 * instant from the two partial indexes and expires what is past.
 */

/**
 * Milliseconds from now (on the database's clock, so a skewed replica clock does not matter) to
 * the next instant a pending task becomes due or expires; null when nothing waits for a time. Zero
 * or less: an expiry already past (a row an assigner held when it was due), or a task that became
 * due while this statement ran.
 */
export async function readNextDueInMs(db: Db): Promise<number | null> {
  const { rows } = await sql<{ ms: number | null }>`
    SELECT extract(epoch FROM least(
             (SELECT min(not_before) FROM dispatch_tasks WHERE status = 'pending' AND not_before > now()),
             (SELECT min(start_by) FROM dispatch_tasks WHERE status = 'pending' AND start_by IS NOT NULL)
           ) - clock_timestamp()) * 1000 AS ms`.execute(db);
  const ms = rows[0]?.ms;
  return ms === null || ms === undefined ? null : Number(ms);
}

export interface ExpiredTask {
  id: string;
  scope: string;
}

/**
 * Ends pending tasks past start_by: status `timeout`, timeout_reason `expired`, an `expired` event
 * (published as `swarm.task.<id>.timeout` with outcome `expired`). Guarded by status = 'pending'
 * and the row lock: an assigner holding the row is skipped (it claimed the task before start_by
 * and assigns it, or releases it for the next pass), so a task is assigned or expired, never both.
 */
export async function expireUnstartedTasks(db: Db, limit: number): Promise<ExpiredTask[]> {
  const { rows } = await sql<ExpiredTask>`
    WITH t AS (
      UPDATE dispatch_tasks
         SET status = 'timeout', timeout_reason = 'expired', completed_at = now(), not_before = NULL,
             error = 'expired: not started by ' || to_char(start_by AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
       WHERE id IN (
         SELECT id FROM dispatch_tasks
          WHERE status = 'pending' AND start_by <= now()
          ORDER BY start_by LIMIT ${limit}
            FOR UPDATE SKIP LOCKED)
         AND status = 'pending'
      RETURNING id, scope, attempt, start_by, error, retry_count, max_retries
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, attempt, payload)
      SELECT id, 'expired', attempt,
             jsonb_build_object('task_id', id, 'reason', 'expired', 'start_by', start_by, 'error', error,
                                'retry_count', retry_count, 'max_retries', max_retries)
        FROM t
    )
    SELECT id, scope FROM t`.execute(db);
  return rows;
}
