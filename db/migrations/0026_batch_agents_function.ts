import { type Kysely, sql } from 'kysely';

/**
 * An assignment batch's first statement (src/assignment/assignment.queries.ts,
 * lockAssignableAgents) becomes a PL/pgSQL function, so that each session plans it once: it travels
 * in one message with the batch's BEGIN, as a literal statement, which PostgreSQL parsed and
 * planned anew for every batch (0.5 to 0.7 ms of the backend's CPU for 200 agents, more than half
 * of the statement's cost). The plan is forced generic: with a custom plan the share's condition
 * folds away and a generic one looks costlier, so PostgreSQL would keep planning each call.
 *
 * What it does is unchanged: take the scope-controls gate and the claim's planner settings for the
 * transaction (and ACTIVE first, when asked), lock the free agents in name order (every share_of-th
 * from the share_index-th, when given), and read the others unlocked; the agents come back as one
 * JSON array of each kind, as since the statement's previous version. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE FUNCTION dispatch_lock_assignable_agents(default_limit integer, take_active boolean, share_index integer, share_of integer)
  RETURNS TABLE (took_active boolean, locked_agents json, other_agents json)
  LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  RETURN QUERY
  WITH batch_setup AS MATERIALIZED (
    -- 72142501: the assigner's ACTIVE session lock (migration 0002); 72142506: the scope-controls
    -- gate, shared (src/scopes/scope.queries.ts). The planner settings are the claim's, for the rest
    -- of the transaction.
    SELECT CASE WHEN take_active THEN pg_try_advisory_lock(72142501) ELSE true END AS active,
           pg_advisory_xact_lock_shared(72142506),
           set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)
  ), locked AS (
    -- Whether an agent is free is tested on its row here, not through another CTE: a row that
    -- another batch changed while this one waited for its lock is tested again as it now is.
    SELECT a.name, a.capabilities, a.status, a.drained,
           dispatch_agent_live_load(a.active_tasks, a.released_folded, a_r.released) AS active_tasks,
           coalesce(a.max_concurrent, default_limit)::int AS max_concurrent, a.last_assigned_at, a.avoid_until
      FROM dispatch_agents a LEFT JOIN dispatch_agent_releases a_r ON a_r.agent = a.name
     WHERE (SELECT active FROM batch_setup)
       AND NOT a.drained AND a.status IN ('ready', 'sleeping', 'busy')
       AND dispatch_agent_live_load(a.active_tasks, a.released_folded, a_r.released) < coalesce(a.max_concurrent, default_limit)
       AND (a.avoid_until IS NULL OR a.avoid_until <= now())
       AND (share_of IS NULL OR a.name IN (
             SELECT numbered.name
               FROM (SELECT s.name, row_number() OVER (ORDER BY s.name) - 1 AS n
                       FROM dispatch_agents s LEFT JOIN dispatch_agent_releases s_r ON s_r.agent = s.name
                      WHERE NOT s.drained AND s.status IN ('ready', 'sleeping', 'busy')
                        AND dispatch_agent_live_load(s.active_tasks, s.released_folded, s_r.released) < coalesce(s.max_concurrent, default_limit)
                        AND (s.avoid_until IS NULL OR s.avoid_until <= now())) numbered
              WHERE numbered.n % share_of = share_index))
     ORDER BY a.name
       FOR UPDATE OF a
  )
  SELECT b.active,
         (SELECT coalesce(json_agg(json_build_array(l.name, l.capabilities, l.status, l.drained, l.active_tasks, l.max_concurrent,
                                                    l.last_assigned_at, l.avoid_until) ORDER BY l.name), '[]')
            FROM locked l),
         (SELECT coalesce(json_agg(json_build_array(o.name, o.capabilities, o.status, o.drained,
                                                    dispatch_agent_live_load(o.active_tasks, o.released_folded, o_r.released),
                                                    coalesce(o.max_concurrent, default_limit)::int, o.last_assigned_at, o.avoid_until)
                                   ORDER BY o.name), '[]')
            FROM dispatch_agents o LEFT JOIN dispatch_agent_releases o_r ON o_r.agent = o.name
           WHERE b.active AND o.name NOT IN (SELECT name FROM locked))
    FROM batch_setup b;
END $$;

COMMENT ON FUNCTION dispatch_lock_assignable_agents(integer, boolean, integer, integer) IS 'An assignment batch''s first statement, run right after its BEGIN: with take_active, tries the assigner''s ACTIVE lock (and does nothing more without it); takes the scope-controls gate (shared) and the claim''s planner settings for the transaction; locks the free agents in name order (only every share_of-th from the share_index-th when share_of is given) and reads the others unlocked. The agents come back as JSON arrays [name, capabilities, status, drained, active_tasks, max_concurrent, last_assigned_at, avoid_until], max_concurrent defaulting to default_limit. PL/pgSQL so that a session plans it once (migration 0026).';
`,
    )
    .execute(db);
}
