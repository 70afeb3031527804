import { type Kysely, sql } from 'kysely';

/**
 * An assignment batch's first statement and its write (src/assignment/assignment.queries.ts,
 * lockAssignableAgents and applyAssignments) become PL/pgSQL functions, so that each session plans
 * them once. They travel in one message with the batch's BEGIN and COMMIT, as literal statements,
 * which PostgreSQL parsed and planned anew for every batch: for the first statement, 0.5 to 0.7 ms
 * of the backend's CPU with 200 agents, more than half of its cost; for the write, about 0.3 to
 * 0.5 ms. Their plans are forced generic: with custom plans the share's condition folds away and a
 * generic plan looks costlier, so PostgreSQL would keep planning each call.
 *
 * What they do is unchanged. The first takes the scope-controls gate and the claim's planner
 * settings for the transaction (and ACTIVE first, when asked), locks the free agents in name order
 * (every share_of-th from the share_index-th, when given) and reads the others unlocked; the agents
 * come back as one JSON array of each kind, as since the statement's previous version. The write
 * gives each decided task still pending its attempt, writes its assigned event and its agent's
 * row, and announces a near deadline to the due timer. Forward-only.
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

CREATE FUNCTION dispatch_apply_assignments(decisions jsonb, notice_within_ms integer)
  RETURNS TABLE (id uuid, assignee text, attempt integer, scope text, traceparent text,
                 created_at timestamptz, assigned_at timestamptz, due_notices bigint)
  LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH decided AS (
    SELECT * FROM jsonb_to_recordset(decisions) AS d(id uuid, agent text, placement jsonb)
  ), t AS (
    -- Found by primary key: written plainly, the guard matches the partial indexes on pending
    -- tasks, which statistics from before a backlog made the planner read whole.
    UPDATE dispatch_tasks t
       SET status = 'assigned', assignee = d.agent, attempt = t.attempt + 1, assigned_at = now(),
           started_at = NULL, last_progress_at = NULL, unmatched_at = NULL, not_before = NULL,
           deadline_at = dispatch_attempt_deadline(NULL, now(), now(), t.timeout_ms, t.heartbeat_timeout_ms)
      FROM decided d
     WHERE t.id = ANY (ARRAY(SELECT id FROM decided)) AND t.id = d.id AND coalesce(t.status, '') = 'pending'
    RETURNING t.id, t.assignee, t.attempt, t.scope, t.deadline_at, d.placement, t.traceparent, t.created_at, t.assigned_at
  ), e AS (
    -- The decision goes on the event, written once, not on the task row (migration 0007).
    INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload, placement)
    SELECT t.id, 'assigned', t.assignee, t.attempt,
           jsonb_build_object('task_id', t.id, 'assignee', t.assignee, 'scope', t.scope, 'attempt', t.attempt),
           t.placement
      FROM t
  ), a AS (
    -- The winners' rows are written anyway, and locked: their releases are folded here
    -- (migration 0022), read on this statement's snapshot, taken after the batch's lock. Each
    -- winner's releases are looked up by key: a plan cached while there were few agents would
    -- otherwise keep reading all of them.
    UPDATE dispatch_agents a
       SET last_assigned_at = now(),
           active_tasks = a.active_tasks - greatest(0, w.released - a.released_folded)::integer,
           released_folded = greatest(a.released_folded, w.released)
      FROM (SELECT x.assignee, coalesce((SELECT r.released FROM dispatch_agent_releases r WHERE r.agent = x.assignee), 0) AS released
              FROM (SELECT DISTINCT t.assignee FROM t) x) w
     WHERE a.name = w.assignee
  ), due AS (
    -- The due timer times the attempts out from deadline_at (migration 0023); it reads the next
    -- deadline at least every notice_within_ms, so only a sooner one is announced.
    SELECT dispatch_notify_due(min(t.deadline_at)) FROM t
    HAVING min(t.deadline_at) < now() + make_interval(secs => notice_within_ms / 1000.0)
  )
  -- Naming due in the output keeps the planner from dropping it (and its side effect).
  SELECT t.id, t.assignee, t.attempt, t.scope, t.traceparent, t.created_at, t.assigned_at, (SELECT count(*) FROM due) FROM t;
END $$;

COMMENT ON FUNCTION dispatch_apply_assignments(jsonb, integer) IS 'An assignment batch''s write, sent with its COMMIT: decisions is a JSON array of {id, agent, placement}; each task still pending gets its new attempt, assignee and deadline, an assigned event carrying the placement, and its agent''s last_assigned_at (its releases folded into active_tasks); a deadline sooner than notice_within_ms is announced to the due timer. Returns the tasks assigned. PL/pgSQL so that a session plans it once (migration 0026).';
`,
    )
    .execute(db);
}
