import { type Kysely, sql } from 'kysely';

/**
 * Finishing a task no longer writes its agent's row. The assigner holds the free agents' rows
 * locked for a whole batch (lockAssignableAgents), and every completion lowered its agent's
 * active_tasks in that row: completions queued behind batches and batches behind completions. At
 * 380 tasks/s through the agent round trip a completion statement took 29 ms (16 tasks), most of
 * it waiting, and a batch's first statement 9.9 ms (docs/BENCHMARKS.md, session 20).
 *
 * A task leaving an agent (completed, failed, retried, cancelled, timed out, moved) now adds to
 * the agent's count in dispatch_agent_releases, a row nothing else locks. Taking work still
 * raises dispatch_agents.active_tasks under the row lock. The live load is
 *
 *   active_tasks - (released - released_folded)     (dispatch_agent_live_load, view dispatch_agent_load)
 *
 * and it is never under the truth for a batch, whatever it reads: the batch locks the agent's
 * row, so it sees the row's latest active_tasks and released_folded (a wait for another batch's
 * lock re-reads the row); released only grows, and a stale read of it (a release committed after
 * the batch's snapshot) only makes the agent look fuller. A limit can therefore never be
 * overrun; at worst a slot freed a moment ago waits for the next batch, which the release's
 * wake-up asks for.
 *
 * Folding moves the released count into active_tasks (under the row lock), so the column stays
 * what a person reading the table expects, give or take the releases since the last fold: the
 * assignment write folds its winners, dispatch_fold_agent_releases() the rest (every second, one
 * replica, passing over rows a batch holds). Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE TABLE dispatch_agent_releases (
  agent     text PRIMARY KEY,
  released  bigint NOT NULL DEFAULT 0 CHECK (released >= 0)
) WITH (fillfactor = 50);
COMMENT ON TABLE dispatch_agent_releases IS 'Tasks each agent has given up (completed, failed, retried, cancelled, timed out, moved), counted for ever: kept out of dispatch_agents so that finishing a task never waits for an assignment batch, which holds the free agents'' rows locked. Live loads: the view dispatch_agent_load (migration 0022).';
COMMENT ON COLUMN dispatch_agent_releases.agent IS 'Agent name (dispatch_agents.name; the row outlives a deleted agent, and a new row of the same name starts from its count).';
COMMENT ON COLUMN dispatch_agent_releases.released IS 'Tasks that left this agent''s hands since the row was created; only ever grows.';

ALTER TABLE dispatch_agents ADD COLUMN released_folded bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN dispatch_agents.released_folded IS 'The agent''s dispatch_agent_releases.released already subtracted from active_tasks (by the last fold).';
COMMENT ON COLUMN dispatch_agents.active_tasks IS 'Tasks assigned or running on this agent as of the last fold of its releases (at most about a second old unless a batch holds the row); the live load is in the view dispatch_agent_load (dispatch_agent_live_load), which also subtracts the releases since.';

INSERT INTO dispatch_agent_releases (agent) SELECT name FROM dispatch_agents;

-- Read with the agent's row joined to its releases row (a join, not a subquery per agent: 200
-- agents' loads cost 7.7 ms as correlated subqueries, 0.5 ms as a hash join).
CREATE FUNCTION dispatch_agent_live_load(active_tasks integer, released_folded bigint, released bigint) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT active_tasks - greatest(0, coalesce(released, 0) - released_folded)::integer
$$;
COMMENT ON FUNCTION dispatch_agent_live_load(integer, bigint, bigint) IS 'Tasks assigned or running on an agent now, from its dispatch_agents row (active_tasks, released_folded) and its dispatch_agent_releases.released (null when it has no row yet): active_tasks less the releases not yet folded into it (migration 0022).';

CREATE OR REPLACE VIEW dispatch_agent_load AS
  SELECT a.name, a.status, a.drained, dispatch_agent_live_load(a.active_tasks, a.released_folded, r.released) AS active_tasks,
         a.max_concurrent, a.capabilities, a.last_seen_at, a.last_assigned_at
    FROM dispatch_agents a LEFT JOIN dispatch_agent_releases r ON r.agent = a.name;

-- Where the net change of a statement's tasks goes: up in the agent's row (taking work happens
-- under the assigner's lock on it), down in its releases row. Releases are written in name order,
-- so two statements releasing for the same agents wait for each other instead of deadlocking.
CREATE FUNCTION dispatch_apply_load_changes(agents text[], changes integer[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  freed text[];
BEGIN
  UPDATE dispatch_agents a SET active_tasks = a.active_tasks + c.n
    FROM unnest(agents, changes) AS c(name, n)
   WHERE a.name = c.name AND c.n > 0;
  WITH released AS (
    INSERT INTO dispatch_agent_releases AS r (agent, released)
    SELECT c.name, -c.n FROM unnest(agents, changes) AS c(name, n) WHERE c.n < 0 ORDER BY c.name
    ON CONFLICT (agent) DO UPDATE SET released = r.released + excluded.released
    RETURNING agent
  )
  SELECT array_agg(agent) INTO freed FROM released;
  -- A freed slot wakes the assigners when work for that agent waits (as dispatch_agents_wake).
  IF freed IS NOT NULL AND EXISTS (
       SELECT 1 FROM dispatch_agents a
        WHERE a.name = ANY (freed) AND a.status IN ('ready', 'sleeping', 'busy') AND NOT a.drained
          AND EXISTS (SELECT 1 FROM dispatch_tasks t WHERE t.status = 'pending' AND t.scope = ANY (a.capabilities))) THEN
    PERFORM dispatch_request_assignment();
  END IF;
END $$;
COMMENT ON FUNCTION dispatch_apply_load_changes(text[], integer[]) IS 'Applies net changes in active tasks per agent (parallel arrays: agent, change): a rise to dispatch_agents.active_tasks, a fall to dispatch_agent_releases (migration 0022), waking the assigners when a freed agent has work waiting.';

CREATE OR REPLACE FUNCTION dispatch_sync_active_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  agents text[];
  changes integer[];
BEGIN
  WITH delta AS (
    SELECT assignee AS name, count(*) AS n FROM new_rows
     WHERE status IN ('assigned', 'running') AND assignee IS NOT NULL GROUP BY assignee
    UNION ALL
    SELECT assignee, -count(*) FROM old_rows
     WHERE status IN ('assigned', 'running') AND assignee IS NOT NULL GROUP BY assignee
  )
  SELECT array_agg(name), array_agg(n) INTO agents, changes
    FROM (SELECT name, sum(n)::integer AS n FROM delta GROUP BY name HAVING sum(n) <> 0) net;
  IF agents IS NOT NULL THEN
    PERFORM dispatch_apply_load_changes(agents, changes);
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_sync_active_tasks() IS 'Statement trigger: the net change in active tasks per agent, applied by dispatch_apply_load_changes.';

CREATE OR REPLACE FUNCTION dispatch_sync_active_tasks_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  agents text[];
  changes integer[];
BEGIN
  SELECT array_agg(assignee), array_agg(-n) INTO agents, changes
    FROM (SELECT assignee, count(*)::integer AS n FROM old_rows
           WHERE status IN ('assigned', 'running') AND assignee IS NOT NULL GROUP BY assignee) d;
  IF agents IS NOT NULL THEN
    PERFORM dispatch_apply_load_changes(agents, changes);
  END IF;
  RETURN NULL;
END $$;

-- A new agent row starts from the tasks it already holds (e.g. re-registered after a purge), and
-- from its name's release count, which outlives the row.
CREATE OR REPLACE FUNCTION dispatch_agents_count_existing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.active_tasks := (SELECT count(*) FROM dispatch_tasks
                        WHERE assignee = NEW.name AND status IN ('assigned', 'running'));
  NEW.released_folded := coalesce((SELECT released FROM dispatch_agent_releases WHERE agent = NEW.name), 0);
  RETURN NEW;
END $$;

-- Folding lowers active_tasks without freeing anything: it no longer wakes the assigners (the
-- release did).
DROP TRIGGER dispatch_agents_wake_on_update ON dispatch_agents;
CREATE TRIGGER dispatch_agents_wake_on_update AFTER UPDATE ON dispatch_agents
  FOR EACH ROW WHEN (
    NEW.status IN ('ready', 'sleeping', 'busy') AND NOT NEW.drained AND (
      OLD.status IS DISTINCT FROM NEW.status OR OLD.drained
      OR OLD.capabilities IS DISTINCT FROM NEW.capabilities OR OLD.max_concurrent IS DISTINCT FROM NEW.max_concurrent
      OR (OLD.avoid_until IS NOT NULL AND NEW.avoid_until IS NULL)))
  EXECUTE FUNCTION dispatch_agents_wake();

CREATE FUNCTION dispatch_fold_agent_releases() RETURNS integer LANGUAGE sql AS $$
  WITH folding AS (
    -- A row a batch holds is passed over: the batch's write folds its winners, the next fold the rest.
    SELECT a.name, r.released FROM dispatch_agents a JOIN dispatch_agent_releases r ON r.agent = a.name
     WHERE r.released > a.released_folded
     ORDER BY a.name
       FOR UPDATE OF a SKIP LOCKED
  ), folded AS (
    UPDATE dispatch_agents a
       SET active_tasks = a.active_tasks - greatest(0, f.released - a.released_folded)::integer,
           released_folded = greatest(a.released_folded, f.released)
      FROM folding f WHERE a.name = f.name
    RETURNING 1
  )
  SELECT count(*)::integer FROM folded
$$;
COMMENT ON FUNCTION dispatch_fold_agent_releases() IS 'Subtracts each agent''s releases counted since its last fold from active_tasks (migration 0022); rows locked by an assignment batch are passed over. Returns how many agents it folded.';
`,
    )
    .execute(db);
}
