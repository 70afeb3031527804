import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { RetryPolicy } from '../tasks/task.queries.js';

/**
 * Tasks that wait for a time (migration 0012): delayed tasks and retries in backoff wait for
 * not_before, tasks with an expiry for start_by; and attempts wait for their deadline (migration
 * 0023). The due timer (due-timer.ts) reads the next instant from the three partial indexes, and
 * expires and times out what is past.
 */

/**
 * Milliseconds from now (on the database's clock, so a skewed replica clock does not matter) to
 * the next instant a pending task becomes due or expires, or an attempt reaches its deadline; null
 * when nothing waits for a time. Zero or less: an expiry or deadline already past (a row another
 * transaction held when it was due), or a task that became due while this statement ran.
 */
export async function readNextDueInMs(db: Db): Promise<number | null> {
  const { rows } = await sql<{ ms: number | null }>`
    SELECT extract(epoch FROM least(
             (SELECT min(not_before) FROM dispatch_tasks WHERE status = 'pending' AND not_before > now()),
             (SELECT min(start_by) FROM dispatch_tasks WHERE status = 'pending' AND start_by IS NOT NULL),
             (SELECT min(deadline_at) FROM dispatch_tasks WHERE status IN ('assigned', 'running'))
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

export interface TimedOut {
  id: string;
  /** pending: retried after a backoff (event timeout_retry); timeout: out of retries (timeout_exhausted). */
  status: 'pending' | 'timeout';
  attempt: number;
}

/**
 * Times out the attempts past their deadline (execution or heartbeat, whichever came first). With
 * retries left a task goes back to pending after a backoff (timeout_retry); otherwise it ends as
 * `timeout` (timeout_exhausted). The agent is remembered so another one is preferred.
 *
 * Rows are taken FOR UPDATE SKIP LOCKED, the deadline re-checked on the locked row: an attempt a
 * completion, progress report or cancel holds is left to it (a progress report moves the
 * deadline; if it is still past, the next pass, 10 ms later, takes it). Each transition is thus
 * either the timeout or the agent's, never both; a late report for a timed-out attempt gets 409.
 */
export async function timeOutDueAttempts(db: Db, policy: RetryPolicy, limit: number): Promise<TimedOut[]> {
  const { rows } = await sql<TimedOut>`
    WITH due AS (
      -- Which deadline passed, read on the locked row: the heartbeat's, unless the execution's has too.
      SELECT id, heartbeat_timeout_ms IS NOT NULL
                 AND coalesce(last_progress_at, assigned_at) + make_interval(secs => heartbeat_timeout_ms / 1000.0) <= now()
                 AND coalesce(started_at, assigned_at) + make_interval(secs => timeout_ms / 1000.0) > now() AS silent
        FROM dispatch_tasks
       WHERE status IN ('assigned', 'running') AND deadline_at <= now()
       ORDER BY deadline_at LIMIT ${limit}
         FOR UPDATE SKIP LOCKED
    ), t AS (
      UPDATE dispatch_tasks d
         SET status = CASE WHEN d.retry_count < d.max_retries THEN 'pending' ELSE 'timeout' END,
             retry_count = CASE WHEN d.retry_count < d.max_retries THEN d.retry_count + 1 ELSE d.retry_count END,
             not_before = CASE WHEN d.retry_count < d.max_retries
                               THEN now() + dispatch_retry_delay(d.retry_count, ${policy.backoffBaseMs}, ${policy.backoffMaxMs}) END,
             completed_at = CASE WHEN d.retry_count < d.max_retries THEN NULL ELSE now() END,
             error = format('attempt %s on %s timed out: %s', d.attempt, d.assignee,
                            CASE WHEN due.silent THEN format('no progress for %s ms (heartbeat_timeout_ms)', d.heartbeat_timeout_ms)
                                 ELSE format('not finished within %s ms (timeout_ms)', d.timeout_ms) END),
             timeout_reason = CASE WHEN d.retry_count < d.max_retries THEN NULL
                                   WHEN due.silent THEN 'heartbeat' ELSE 'execution' END,
             avoid_agent = d.assignee,
             deadline_at = NULL
        FROM due
       WHERE d.id = ANY (ARRAY(SELECT id FROM due)) AND d.id = due.id AND d.status IN ('assigned', 'running') AND d.deadline_at <= now()
      RETURNING d.id, d.status, d.attempt, d.assignee, d.retry_count, d.max_retries, d.error
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, CASE WHEN status = 'pending' THEN 'timeout_retry' ELSE 'timeout_exhausted' END, assignee, attempt,
             jsonb_build_object('task_id', id, 'retry_count', retry_count, 'max_retries', max_retries, 'error', error)
        FROM t
    )
    SELECT id, status, attempt FROM t`.execute(db);
  return rows;
}
