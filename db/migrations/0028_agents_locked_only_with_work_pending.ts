import { type Kysely, sql } from 'kysely';

/**
 * An assignment batch's first statement (dispatch_lock_assignable_agents, migration 0026) no
 * longer locks or reads any agent when no task is pending.
 *
 * A drain confirms that the queue is empty before it goes idle (a batch after the last one that
 * placed work, and one more after the writers that saw it active have committed: migration 0002).
 * Each of those batches locked every free agent and read all the others, then claimed nothing: at
 * low rates, when each new task gets a drain of its own, that was two of every three batches, and
 * the agents' lock and read is the batch's costliest statement apart from the write (1.4 ms a
 * call with 200 agents in the round trip benchmark at 73 tasks/s; 1,323 calls for 704 batches
 * that placed work). Now it tries ACTIVE (when asked), then asks dispatch_pending_tasks_exist();
 * with nothing pending it returns empty agent lists at once, taking neither the scope-controls gate
 * nor the claim's planner settings, and the assigner ends the batch without its claim.
 *
 * The question is asked after ACTIVE and with a snapshot of its own, taken after the batch began,
 * as the claim's was: a task committed before a wake-up, or before the writers' barrier was
 * waited out, is seen (the protocol of migration 0002 asks no more of a batch's look). Pending
 * tasks that no agent can take, or that are not due yet, still make the batch lock and claim, as
 * before. Same signature and columns: a replica of the previous version, during a rolling upgrade,
 * claims over no scopes when it gets no agents, and finds nothing. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE FUNCTION dispatch_pending_tasks_exist() RETURNS boolean
  LANGUAGE plpgsql STABLE
  SET enable_seqscan = off
AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM dispatch_tasks WHERE status = 'pending');
END $$;

COMMENT ON FUNCTION dispatch_pending_tasks_exist() IS 'Whether any task is pending (due or not, servable or not), read through a partial index on pending tasks: the assignment batch''s first question (dispatch_lock_assignable_agents). PL/pgSQL so that a session plans it once, with sequential scans off so that a plan made while dispatch_tasks was nearly empty does not read every finished task once it is large (migration 0028).';

CREATE OR REPLACE FUNCTION dispatch_lock_assignable_agents(default_limit integer, take_active boolean, share_index integer, share_of integer)
  RETURNS TABLE (took_active boolean, locked_agents json, other_agents json)
  LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  -- 72142501: the assigner's ACTIVE session lock (migration 0002).
  is_active boolean := CASE WHEN take_active THEN pg_try_advisory_lock(72142501) ELSE true END;
BEGIN
  -- Another assigner is active, or there is nothing to place: no agent is locked or read.
  IF NOT is_active OR NOT dispatch_pending_tasks_exist() THEN
    RETURN QUERY SELECT is_active, '[]'::json, '[]'::json;
    RETURN;
  END IF;
  RETURN QUERY
  WITH batch_setup AS MATERIALIZED (
    -- 72142506: the scope-controls gate, shared (src/scopes/scope.queries.ts). The planner settings
    -- are the claim's, for the rest of the transaction.
    SELECT true AS ready,
           pg_advisory_xact_lock_shared(72142506),
           set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)
  ), locked AS (
    -- Whether an agent is free is tested on its row here, not through another CTE: a row that
    -- another batch changed while this one waited for its lock is tested again as it now is.
    SELECT a.name, a.capabilities, a.status, a.drained,
           dispatch_agent_live_load(a.active_tasks, a.released_folded, a_r.released) AS active_tasks,
           coalesce(a.max_concurrent, default_limit)::int AS max_concurrent, a.last_assigned_at, a.avoid_until
      FROM dispatch_agents a LEFT JOIN dispatch_agent_releases a_r ON a_r.agent = a.name
     WHERE (SELECT ready FROM batch_setup)
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
  SELECT b.ready,
         (SELECT coalesce(json_agg(json_build_array(l.name, l.capabilities, l.status, l.drained, l.active_tasks, l.max_concurrent,
                                                    l.last_assigned_at, l.avoid_until) ORDER BY l.name), '[]')
            FROM locked l),
         (SELECT coalesce(json_agg(json_build_array(o.name, o.capabilities, o.status, o.drained,
                                                    dispatch_agent_live_load(o.active_tasks, o.released_folded, o_r.released),
                                                    coalesce(o.max_concurrent, default_limit)::int, o.last_assigned_at, o.avoid_until)
                                   ORDER BY o.name), '[]')
            FROM dispatch_agents o LEFT JOIN dispatch_agent_releases o_r ON o_r.agent = o.name
           WHERE o.name NOT IN (SELECT name FROM locked))
    FROM batch_setup b;
END $$;

COMMENT ON FUNCTION dispatch_lock_assignable_agents(integer, boolean, integer, integer) IS 'An assignment batch''s first statement, run right after its BEGIN: with take_active, tries the assigner''s ACTIVE lock (and does nothing more without it); with no task pending, returns no agents and does nothing more (migration 0028); otherwise takes the scope-controls gate (shared) and the claim''s planner settings for the transaction, locks the free agents in name order (only every share_of-th from the share_index-th when share_of is given) and reads the others unlocked. The agents come back as JSON arrays [name, capabilities, status, drained, active_tasks, max_concurrent, last_assigned_at, avoid_until], max_concurrent defaulting to default_limit. PL/pgSQL so that a session plans it once (migration 0026).';
`,
    )
    .execute(db);
}
