import { sql } from 'kysely';
import type { Db } from '../db/database.js';

export interface ScopeCountRow {
  scope: string;
  status: string;
  tasks: number;
}

export interface OldestPendingRow {
  scope: string;
  seconds: number;
}

export interface ObservationRow {
  scope: string;
  kind: 'finished' | 'schedule_to_start' | 'run';
  outcome: string;
  le: number;
  observations: number;
  seconds: number;
}

export interface AgentLoadRow {
  name: string;
  load: number;
  limit: number;
}

/** Open tasks per scope and status: the sum of the changes the triggers appended (migration 0008). */
export async function readScopeCounts(db: Db): Promise<ScopeCountRow[]> {
  return await db
    .selectFrom('dispatch_scope_counts')
    .select(['scope', 'status', sql<number>`sum(tasks)::float8`.as('tasks')])
    .groupBy(['scope', 'status'])
    .execute();
}

/** Folds the counters' appended changes into one row per key (see dispatch_fold_scope_counters). */
export async function foldScopeCounters(db: Db): Promise<number> {
  const { rows } = await sql<{ folded: number }>`SELECT dispatch_fold_scope_counters() AS folded`.execute(db);
  return rows[0]?.folded ?? 0;
}

/**
 * Folds each agent's releases counted since its last fold into its active_tasks, passing over
 * rows an assignment batch holds (dispatch_fold_agent_releases, migration 0022). Returns how many
 * agents it folded.
 */
export async function foldAgentReleases(db: Db): Promise<number> {
  const { rows } = await sql<{ folded: number }>`SELECT dispatch_fold_agent_releases() AS folded`.execute(db);
  return rows[0]?.folded ?? 0;
}

/**
 * Age of the oldest pending task of each scope that has one: one probe of
 * dispatch_tasks_pending_by_scope_idx per scope (stepping over delayed tasks not yet due), never a
 * pass over the tasks.
 */
export async function readOldestPending(db: Db): Promise<OldestPendingRow[]> {
  const { rows } = await sql<OldestPendingRow>`
    SELECT s.scope, greatest(extract(epoch FROM now() - o.ready_at), 0)::float8 AS seconds
      FROM (SELECT scope FROM dispatch_scope_counts WHERE status = 'pending' GROUP BY scope HAVING sum(tasks) > 0) s
     CROSS JOIN LATERAL (
       -- A delayed task waits for its time, not for an agent: it counts from its run_at, and not
       -- before it (migration 0012).
       SELECT coalesce(t.run_at, t.created_at) AS ready_at FROM dispatch_tasks t
        WHERE t.scope = s.scope AND t.status = 'pending' AND (t.run_at IS NULL OR t.run_at <= now())
        ORDER BY t.created_at LIMIT 1
     ) o`.execute(db);
  return rows;
}

/** Every histogram bucket row; the bounds come from dispatch_latency_buckets() so no copy drifts. */
export async function readObservations(db: Db): Promise<{ buckets: number[]; rows: ObservationRow[] }> {
  const [rows, bounds] = await Promise.all([
    db
      .selectFrom('dispatch_scope_observations')
      .select(['scope', 'kind', 'outcome', 'le', sql<number>`sum(observations)::float8`.as('observations'), sql<number>`sum(seconds)`.as('seconds')])
      .groupBy(['scope', 'kind', 'outcome', 'le'])
      .execute() as Promise<ObservationRow[]>,
    sql<{ buckets: number[] }>`SELECT dispatch_latency_buckets() AS buckets`.execute(db),
  ]);
  return { buckets: bounds.rows[0]?.buckets ?? [], rows };
}

/** Each agent not stopped, with its live load and its limit (the default when it has none). */
export async function readAgentLoad(db: Db, defaultMaxConcurrent: number): Promise<AgentLoadRow[]> {
  const { rows } = await sql<AgentLoadRow>`
    SELECT name, active_tasks AS load, coalesce(max_concurrent, ${defaultMaxConcurrent})::int AS "limit"
      FROM dispatch_agent_load WHERE status <> 'stopped'`.execute(db);
  return rows;
}
