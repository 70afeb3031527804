import { type Kysely, sql } from 'kysely';

/**
 * An assignment batch's claim travels in its first statement: the batch now calls
 * dispatch_lock_agents_and_claim, which does what dispatch_lock_agents_for_pending_work
 * (migration 0028) does and then, when some agent was locked as free, claims the tasks those
 * agents can serve with dispatch_claim_pending_tasks (migration 0029, lock_controls on), returning
 * them beside the agents.
 *
 * The claim was a round trip of its own between the agents' lock and the write, and on a busy
 * replica a round trip also waits for its event loop and for a core: at half the agent round trip
 * benchmark's rate the claim took 0.2 ms in PostgreSQL and 2.0 to 2.7 ms on the replica's clock,
 * while the assigner, running its batches back to back, is what every new task waits for.
 *
 * What the batch reads is unchanged. Each statement of the function takes a snapshot of its own
 * (it is VOLATILE), so the claim still reads after the scope-controls gate was granted and after
 * the agents were locked, as the separate statement did. The servable scopes are the locked
 * agents' capabilities, as the assigner computed them: dispatch_lock_free_agents is the body of
 * dispatch_lock_assignable_agents (migration 0026) moved, returning those scopes as well (found
 * from the agents' JSON instead, they cost 0.25 ms a batch with 200 agents), and
 * dispatch_lock_assignable_agents becomes a wrapper of it, unchanged for its callers: a replica of
 * the previous version keeps calling it, and dispatch_lock_agents_for_pending_work, during a
 * rolling upgrade. Without ACTIVE, the wrapper no longer takes the scope-controls gate for a batch
 * that locks nothing. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE FUNCTION dispatch_lock_free_agents(default_limit integer, share_index integer, share_of integer)
  RETURNS TABLE (locked_agents json, other_agents json, servable_scopes text[])
  LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  RETURN QUERY
  WITH batch_setup AS MATERIALIZED (
    -- 72142506: the scope-controls gate, shared (src/scopes/scope.queries.ts). The planner settings
    -- hold for the rest of the transaction (the claim has had its own since migration 0029).
    SELECT pg_advisory_xact_lock_shared(72142506),
           set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)
  ), locked AS (
    -- Whether an agent is free is tested on its row here, not through another CTE: a row that
    -- another batch changed while this one waited for its lock is tested again as it now is.
    SELECT a.name, a.capabilities, a.status, a.drained,
           dispatch_agent_live_load(a.active_tasks, a.released_folded, a_r.released) AS active_tasks,
           coalesce(a.max_concurrent, default_limit)::int AS max_concurrent, a.last_assigned_at, a.avoid_until
      FROM dispatch_agents a LEFT JOIN dispatch_agent_releases a_r ON a_r.agent = a.name
     WHERE (SELECT true FROM batch_setup)
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
  SELECT (SELECT coalesce(json_agg(json_build_array(l.name, l.capabilities, l.status, l.drained, l.active_tasks, l.max_concurrent,
                                                    l.last_assigned_at, l.avoid_until) ORDER BY l.name), '[]')
            FROM locked l),
         (SELECT coalesce(json_agg(json_build_array(o.name, o.capabilities, o.status, o.drained,
                                                    dispatch_agent_live_load(o.active_tasks, o.released_folded, o_r.released),
                                                    coalesce(o.max_concurrent, default_limit)::int, o.last_assigned_at, o.avoid_until)
                                   ORDER BY o.name), '[]')
            FROM dispatch_agents o LEFT JOIN dispatch_agent_releases o_r ON o_r.agent = o.name
           WHERE o.name NOT IN (SELECT name FROM locked)),
         ARRAY(SELECT DISTINCT c.scope FROM locked l CROSS JOIN unnest(l.capabilities) AS c(scope) ORDER BY c.scope);
END $$;

CREATE OR REPLACE FUNCTION dispatch_lock_assignable_agents(default_limit integer, take_active boolean, share_index integer, share_of integer)
  RETURNS TABLE (took_active boolean, locked_agents json, other_agents json)
  LANGUAGE plpgsql
AS $$
BEGIN
  -- 72142501: the assigner's ACTIVE session lock (migration 0002).
  IF take_active AND NOT pg_try_advisory_lock(72142501) THEN
    RETURN QUERY SELECT false, '[]'::json, '[]'::json;
  ELSE
    RETURN QUERY SELECT true, f.locked_agents, f.other_agents FROM dispatch_lock_free_agents(default_limit, share_index, share_of) f;
  END IF;
END $$;

CREATE FUNCTION dispatch_lock_agents_and_claim(default_limit integer, take_active boolean, share_index integer, share_of integer, claim_limit integer, held_ahead integer)
  RETURNS TABLE (took_active boolean, locked_agents json, other_agents json, claimed json, controls json)
  LANGUAGE plpgsql
AS $$
DECLARE
  agents record;
  claimed_tasks json := '[]';
  claim_controls json := '[]';
BEGIN
  -- 72142501: the assigner's ACTIVE session lock (migration 0002). Without it, or with nothing
  -- to place (migration 0028), no agent is locked or read.
  IF take_active AND NOT pg_try_advisory_lock(72142501) THEN
    RETURN QUERY SELECT false, '[]'::json, '[]'::json, claimed_tasks, claim_controls;
  ELSIF NOT dispatch_pending_tasks_exist() THEN
    RETURN QUERY SELECT true, '[]'::json, '[]'::json, claimed_tasks, claim_controls;
  ELSE
    SELECT * INTO agents FROM dispatch_lock_free_agents(default_limit, share_index, share_of);
    IF cardinality(agents.servable_scopes) > 0 THEN
      SELECT coalesce(json_agg(json_build_array(k.id, k.scope, k.priority, k.avoid_agent, k.ready_at, k.rank) ORDER BY k.rank, k.id)
                        FILTER (WHERE k.id IS NOT NULL), '[]'),
             (array_agg(k.controls))[1]
        INTO claimed_tasks, claim_controls
        FROM dispatch_claim_pending_tasks(agents.servable_scopes, claim_limit, held_ahead, true) AS k;
    END IF;
    RETURN QUERY SELECT true, agents.locked_agents, agents.other_agents, claimed_tasks, claim_controls;
  END IF;
END $$;

COMMENT ON FUNCTION dispatch_lock_free_agents(integer, integer, integer) IS 'Takes the scope-controls gate (shared) and planner settings for the transaction; locks the free agents in name order (only every share_of-th from the share_index-th when share_of is given), reads the others unlocked, and returns the locked agents'' capabilities (servable_scopes). The agents come back as JSON arrays [name, capabilities, status, drained, active_tasks, max_concurrent, last_assigned_at, avoid_until], max_concurrent defaulting to default_limit. PL/pgSQL so that a session plans it once (the body of dispatch_lock_assignable_agents, moved by migration 0030).';
COMMENT ON FUNCTION dispatch_lock_assignable_agents(integer, boolean, integer, integer) IS 'An assignment batch''s first statement before migration 0030: with take_active, tries the assigner''s ACTIVE lock (and does nothing more without it); then dispatch_lock_free_agents, without its servable_scopes. Kept for replicas of the previous version and for dispatch_lock_agents_for_pending_work.';
COMMENT ON FUNCTION dispatch_lock_agents_and_claim(integer, boolean, integer, integer, integer, integer) IS 'An assignment batch''s first statement, run right after its BEGIN (migration 0030): with take_active, tries the assigner''s ACTIVE lock and does nothing more without it; with no task pending, returns no agents; otherwise dispatch_lock_free_agents, then, when some agent was locked, the claim of the tasks they can serve (dispatch_claim_pending_tasks with lock_controls, at most claim_limit, held_ahead walked past), in a snapshot of its own. Claimed tasks come as JSON arrays [id, scope, priority, avoid_agent, ready_at, rank] in claim order; controls lists the controlled scopes the claim locked and left out.';
`,
    )
    .execute(db);
}
