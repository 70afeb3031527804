import { sql } from 'kysely';
import { JOB, JOB_KEY } from '../db/contract.js';
import type { Db } from '../db/database.js';
import type { RetryPolicy } from '../tasks/task.queries.js';

export interface TimedOut {
  id: string;
  status: 'pending' | 'timeout';
  attempt: number;
}

/**
 * Times out one attempt if it is still the current one and its deadline has passed. With
 * retries left the task goes back to pending after a backoff (timeout_retry); otherwise it ends
 * as `timeout` (timeout_exhausted). The agent is remembered so another one is preferred.
 */
export async function timeOutAttempt(db: Db, taskId: string, attempt: number, policy: RetryPolicy): Promise<TimedOut | undefined> {
  const { rows } = await sql<TimedOut>`
    WITH t AS (
      UPDATE dispatch_tasks d
         SET status = CASE WHEN d.retry_count < d.max_retries THEN 'pending' ELSE 'timeout' END,
             retry_count = CASE WHEN d.retry_count < d.max_retries THEN d.retry_count + 1 ELSE d.retry_count END,
             not_before = CASE WHEN d.retry_count < d.max_retries
                               THEN now() + dispatch_retry_delay(d.retry_count, ${policy.backoffBaseMs}, ${policy.backoffMaxMs}) END,
             completed_at = CASE WHEN d.retry_count < d.max_retries THEN NULL ELSE now() END,
             error = format('attempt %s on %s timed out: %s', d.attempt, d.assignee,
                            CASE WHEN d.heartbeat_timeout_ms IS NOT NULL
                                  AND coalesce(d.last_progress_at, d.assigned_at) + make_interval(secs => d.heartbeat_timeout_ms / 1000.0) <= now()
                                  AND coalesce(d.started_at, d.assigned_at) + make_interval(secs => d.timeout_ms / 1000.0) > now()
                                 THEN format('no progress for %s ms (heartbeat_timeout_ms)', d.heartbeat_timeout_ms)
                                 ELSE format('not finished within %s ms (timeout_ms)', d.timeout_ms) END),
             timeout_reason = CASE WHEN d.retry_count < d.max_retries THEN NULL
                                   WHEN d.heartbeat_timeout_ms IS NOT NULL
                                    AND coalesce(d.last_progress_at, d.assigned_at) + make_interval(secs => d.heartbeat_timeout_ms / 1000.0) <= now()
                                    AND coalesce(d.started_at, d.assigned_at) + make_interval(secs => d.timeout_ms / 1000.0) > now()
                                   THEN 'heartbeat' ELSE 'execution' END,
             avoid_agent = d.assignee,
             deadline_at = NULL
       WHERE d.id = ${taskId} AND d.attempt = ${attempt} AND d.status IN ('assigned', 'running') AND d.deadline_at <= now()
      RETURNING d.id, d.status, d.attempt, d.assignee, d.retry_count, d.max_retries, d.error
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, CASE WHEN status = 'pending' THEN 'timeout_retry' ELSE 'timeout_exhausted' END, assignee, attempt,
             jsonb_build_object('task_id', id, 'retry_count', retry_count, 'max_retries', max_retries, 'error', error)
        FROM t
    )
    SELECT id, status, attempt FROM t`.execute(db);
  return rows[0];
}

/** The current attempt and deadline, to re-arm a timeout job that fired before a moved deadline. */
export async function readDeadline(db: Db, taskId: string): Promise<{ attempt: number; deadline_at: Date | null; active: boolean } | undefined> {
  const { rows } = await sql<{ attempt: number; deadline_at: Date | null; active: boolean }>`
    SELECT attempt, deadline_at, status IN ('assigned', 'running') AS active FROM dispatch_tasks WHERE id = ${taskId}`.execute(db);
  return rows[0];
}

export async function scheduleTimeout(db: Db, taskId: string, attempt: number, deadline: Date): Promise<void> {
  await sql`SELECT dispatch_schedule_timeouts(ARRAY[${taskId}]::uuid[], ARRAY[${attempt}]::integer[], ARRAY[${deadline}]::timestamptz[])`.execute(db);
}

/** Safety net: active attempts past their deadline by more than `graceMs` (their job was lost). */
export async function findOverdueAttempts(db: Db, graceMs: number, limit: number): Promise<{ id: string; attempt: number }[]> {
  const { rows } = await sql<{ id: string; attempt: number }>`
    SELECT id, attempt FROM dispatch_tasks
     WHERE status IN ('assigned', 'running') AND deadline_at < now() - make_interval(secs => ${graceMs / 1000})
     ORDER BY deadline_at LIMIT ${limit}`.execute(db);
  return rows;
}

/**
 * Standalone agents whose heartbeat stopped count as stopped (the stop trigger returns their tasks).
 * The rows are locked in name order first, the order an assignment batch locks agents in: an
 * UPDATE of several agents in whatever order the scan meets them can deadlock with a batch.
 */
export async function expireSilentAgents(db: Db, silentForMs: number): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    UPDATE dispatch_agents SET status = 'stopped'
     WHERE name IN (
       SELECT name FROM dispatch_agents
        WHERE source = 'standalone' AND status <> 'stopped'
          AND last_seen_at < now() - make_interval(secs => ${silentForMs / 1000})
        ORDER BY name
          FOR UPDATE)
       AND status <> 'stopped'
    RETURNING name`.execute(db);
  return rows.map((r) => r.name);
}

/** Raises the waiting-too-long alarm once for tasks pending past their start timeout. */
export async function raiseStartAlarms(db: Db, limit: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    WITH t AS (
      UPDATE dispatch_tasks SET start_alarm_at = now()
       WHERE id IN (
         SELECT id FROM dispatch_tasks
          WHERE status = 'pending' AND start_timeout_ms IS NOT NULL AND start_alarm_at IS NULL
            AND created_at + make_interval(secs => start_timeout_ms / 1000.0) <= now()
          ORDER BY created_at LIMIT ${limit}
            FOR UPDATE SKIP LOCKED)
      RETURNING id, scope, start_timeout_ms, created_at, unmatched_at
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, payload)
      SELECT id, 'start_overdue',
             jsonb_build_object('task_id', id, 'scope', scope, 'start_timeout_ms', start_timeout_ms,
                                'waiting_ms', round(extract(epoch FROM now() - created_at) * 1000), 'unmatched', unmatched_at IS NOT NULL)
        FROM t
    )
    SELECT count(*)::int AS n FROM t`.execute(db);
  return rows[0]?.n ?? 0;
}

/** Marks a wake as requested and parks the agent as `starting` so no more work piles onto it. */
export async function markWakeRequested(db: Db, agent: string): Promise<boolean> {
  const { rows } = await sql<{ name: string }>`
    UPDATE dispatch_agents SET wake_requested_at = now(), status = 'starting'
     WHERE name = ${agent} AND status = 'sleeping'
    RETURNING name`.execute(db);
  return rows.length > 0;
}

/**
 * A wake that did not bring the agent up in time: tasks reserved for it and not started go
 * back to pending without spending a retry, and the agent cools down before it gets more.
 */
export async function abandonWake(db: Db, agent: string, cooldownMs: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    WITH a AS (
      UPDATE dispatch_agents
         SET avoid_until = now() + make_interval(secs => ${cooldownMs / 1000}),
             status = CASE WHEN status = 'starting' THEN 'sleeping' ELSE status END
       WHERE name = ${agent} AND status NOT IN ('ready', 'busy')
      RETURNING name
    ), t AS (
      UPDATE dispatch_tasks d
         SET status = 'pending', avoid_agent = d.assignee, deadline_at = NULL
        FROM a
       WHERE d.assignee = a.name AND d.status = 'assigned'
      RETURNING d.id, d.attempt, d.assignee
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'wake_timeout', assignee, attempt,
             jsonb_build_object('task_id', id, 'agent', assignee, 'reason', 'agent did not come up within wake_timeout_ms')
        FROM t
    )
    SELECT count(*)::int AS n, sum(dispatch_unschedule_timeout(id)) AS timeout_jobs FROM t`.execute(db);
  return rows[0]?.n ?? 0;
}

/** One `wake:agent` job per agent; an agent already waiting for one keeps it (same job key). */
export async function enqueueWakes(db: Db, agents: string[]): Promise<void> {
  await sql`
    SELECT graphile_worker.add_job(${JOB.wakeAgent}::text, json_build_object('agent', a), job_key := ${JOB_KEY.wake}::text || a,
                                   job_key_mode := 'preserve_run_at', max_attempts := 5)
      FROM unnest(${agents}::text[]) AS a`.execute(db);
}

/** The `wake:check` job that looks, `afterMs` from now, whether the agent woke. */
export async function scheduleWakeCheck(db: Db, agent: string, afterMs: number): Promise<void> {
  await sql`
    SELECT graphile_worker.add_job(${JOB.wakeCheck}::text, json_build_object('agent', ${agent}::text),
                                   run_at := now() + make_interval(secs => ${afterMs / 1000}),
                                   job_key := ${JOB_KEY.wakeCheck + agent}, max_attempts := 5)`.execute(db);
}
