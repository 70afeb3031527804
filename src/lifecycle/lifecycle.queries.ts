import { sql } from 'kysely';
import { JOB, JOB_KEY } from '../db/contract.js';
import type { Db } from '../db/database.js';

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
    SELECT count(*)::int AS n FROM t`.execute(db);
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
