import { type Kysely, sql } from 'kysely';

/**
 * Task dependencies (`depends_on` on create): a task that waits for others to complete.
 *
 * A dependent waits in a status of its own, `waiting`, outside the pending index, so the claim
 * never reads it and its SQL is untouched. The graph is an edge table indexed both ways, and the
 * dependent carries how many of its dependencies are still open (`waiting_on`). When tasks end,
 * one statement trigger on dispatch_tasks settles their dependents set-based: one statement
 * cancels the dependents of failed, cancelled or timed-out tasks (on_dependency_failure 'cancel'),
 * one decrements the others and makes pending those that reach 0 (the wake-up trigger of
 * migration 0002 then requests an assignment pass), both in the transaction of the change. A
 * trigger rather than each transition's statement: a task ends in many places (complete, fail,
 * cancel, timeout, the agent-stop trigger's reassignment budget, expiry, a DBA's UPDATE), and
 * the trigger sees them all.
 *
 * Forward-only. Existing tasks have no dependencies: waiting_on 0, on_dependency_failure 'cancel'.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
ALTER TABLE dispatch_tasks DROP CONSTRAINT dispatch_tasks_status_check;
ALTER TABLE dispatch_tasks ADD CONSTRAINT dispatch_tasks_status_check
  CHECK (status IN ('waiting', 'pending', 'assigned', 'running', 'completed', 'failed', 'cancelled', 'timeout'));
COMMENT ON COLUMN dispatch_tasks.status IS 'waiting (for its dependencies), pending (for an agent), assigned, running (terminal: completed, failed, cancelled, timeout).';

ALTER TABLE dispatch_tasks
  ADD COLUMN waiting_on integer NOT NULL DEFAULT 0 CHECK (waiting_on >= 0),
  ADD COLUMN on_dependency_failure text NOT NULL DEFAULT 'cancel' CHECK (on_dependency_failure IN ('cancel', 'run'));
ALTER TABLE dispatch_tasks ADD CONSTRAINT dispatch_tasks_waiting_on_dependencies
  CHECK (status <> 'waiting' OR waiting_on > 0);
COMMENT ON COLUMN dispatch_tasks.waiting_on IS 'Dependencies (dispatch_task_dependencies) not yet ended; the task is waiting while this is above 0. Decremented by dispatch_settle_dependents().';
COMMENT ON COLUMN dispatch_tasks.on_dependency_failure IS 'cancel: the task is cancelled when a dependency fails, is cancelled or times out; run: it runs anyway once every dependency has ended.';

CREATE TABLE dispatch_task_dependencies (
  task_id        uuid NOT NULL REFERENCES dispatch_tasks (id) ON DELETE CASCADE,
  depends_on_id  uuid NOT NULL REFERENCES dispatch_tasks (id) ON DELETE CASCADE,
  PRIMARY KEY (task_id, depends_on_id),
  CHECK (task_id <> depends_on_id)
);
-- The other direction: the dependents of a task that just ended, without a scan.
CREATE INDEX dispatch_task_dependencies_dependents_idx ON dispatch_task_dependencies (depends_on_id, task_id);
COMMENT ON TABLE dispatch_task_dependencies IS 'Task dependency graph: task_id waits for depends_on_id to complete. Written once, when task_id is created (its dependencies existed before it, so there is no cycle). Edges go with either task when retention deletes it.';
COMMENT ON COLUMN dispatch_task_dependencies.task_id IS 'The dependent task.';
COMMENT ON COLUMN dispatch_task_dependencies.depends_on_id IS 'A task it waits for.';

-- DBAs list the tasks waiting for dependencies apart from those waiting for an agent.
CREATE INDEX dispatch_tasks_waiting_idx ON dispatch_tasks (created_at) WHERE status = 'waiting';

CREATE VIEW dispatch_waiting_tasks AS
SELECT t.id, t.scope, t.priority, t.requester, t.waiting_on, t.on_dependency_failure, t.created_at,
       (SELECT array_agg(d.depends_on_id ORDER BY d.depends_on_id)
          FROM dispatch_task_dependencies d JOIN dispatch_tasks o ON o.id = d.depends_on_id
         WHERE d.task_id = t.id AND o.status NOT IN ('completed', 'failed', 'cancelled', 'timeout')) AS open_dependencies
  FROM dispatch_tasks t
 WHERE t.status = 'waiting';
COMMENT ON VIEW dispatch_waiting_tasks IS 'Tasks waiting for their dependencies (status waiting), with the dependencies still open. Tasks waiting for an agent are pending (dispatch_queue_depth).';

CREATE OR REPLACE VIEW dispatch_queue_depth AS
  SELECT scope, status, count(*) AS tasks, min(created_at) AS oldest_created_at,
         CASE WHEN status = 'waiting' THEN 'dependencies' WHEN status <> 'pending' THEN NULL
              WHEN not_before > now() THEN 'time' ELSE 'agent' END AS waiting_for
    FROM dispatch_tasks
   WHERE status IN ('waiting', 'pending', 'assigned', 'running')
   GROUP BY scope, status, 5;
COMMENT ON VIEW dispatch_queue_depth IS 'Open work by scope and status, with the age of the oldest task; waiting_for says why open work does not run yet: dependencies (status waiting), time (pending: delayed, or in retry backoff) or agent (pending: due, waiting for a free capable agent).';

-- Waiting tasks in the scope counters (migration 0008): a trigger of its own appends their net
-- change, so the counters' existing functions stay as they are.
ALTER TABLE dispatch_scope_counts DROP CONSTRAINT dispatch_scope_counts_status_check;
ALTER TABLE dispatch_scope_counts ADD CONSTRAINT dispatch_scope_counts_status_check
  CHECK (status IN ('waiting', 'pending', 'assigned', 'running'));
COMMENT ON COLUMN dispatch_scope_counts.status IS 'waiting, pending, assigned or running.';

CREATE FUNCTION dispatch_scope_counts_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO dispatch_scope_counts (scope, status, tasks)
    SELECT scope, 'waiting', count(*) FROM new_rows WHERE status = 'waiting' GROUP BY scope;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO dispatch_scope_counts (scope, status, tasks)
    SELECT scope, 'waiting', -count(*) FROM old_rows WHERE status = 'waiting' GROUP BY scope;
  ELSE
    INSERT INTO dispatch_scope_counts (scope, status, tasks)
    SELECT scope, 'waiting', sum(n)::bigint FROM (
      SELECT scope, count(*) AS n FROM new_rows WHERE status = 'waiting' GROUP BY scope
      UNION ALL
      SELECT scope, -count(*) FROM old_rows WHERE status = 'waiting' GROUP BY scope) delta
     GROUP BY scope HAVING sum(n) <> 0;
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_scope_counts_waiting() IS 'Statement trigger: appends the net change of waiting tasks per scope to dispatch_scope_counts (the other open statuses are counted by dispatch_scope_counts_on_insert/update/delete).';

CREATE TRIGGER dispatch_tasks_waiting_counts_on_insert AFTER INSERT ON dispatch_tasks
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_scope_counts_waiting();
CREATE TRIGGER dispatch_tasks_waiting_counts_on_update AFTER UPDATE ON dispatch_tasks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_scope_counts_waiting();
CREATE TRIGGER dispatch_tasks_waiting_counts_on_delete AFTER DELETE ON dispatch_tasks
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_scope_counts_waiting();

-- Settling dependents. dispatch_settle_dependents() runs after every UPDATE statement of
-- dispatch_tasks; when none of its rows ended, or none that ended has dependents, it costs one
-- pass over the transition tables and an index probe per ended row. Otherwise it hands the ended
-- tasks to dispatch_settle_ended().
CREATE FUNCTION dispatch_settle_dependents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ended_ids uuid[];
  ended_statuses text[];
BEGIN
  -- Inside dispatch_settle_ended(), whose loop takes the next level itself.
  IF current_setting('dispatch.settling_dependents', true) = 'on' THEN
    RETURN NULL;
  END IF;
  SELECT array_agg(n.id), array_agg(n.status) INTO ended_ids, ended_statuses
    FROM new_rows n JOIN old_rows o USING (id)
   WHERE n.status IN ('completed', 'failed', 'cancelled', 'timeout')
     AND o.status NOT IN ('completed', 'failed', 'cancelled', 'timeout')
     AND EXISTS (SELECT 1 FROM dispatch_task_dependencies d WHERE d.depends_on_id = n.id);
  IF ended_ids IS NOT NULL THEN
    PERFORM dispatch_settle_ended(ended_ids, ended_statuses);
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_settle_dependents() IS 'Statement trigger: tasks that just ended (completed, failed, cancelled, timeout) and have dependents are passed to dispatch_settle_ended().';

-- Chains are settled level by level, not by recursion: the cancellations of one level fire the
-- trigger again (nested), which returns at once (dispatch.settling_dependents is on), and the
-- loop takes the cancelled tasks as the next level. A chain of any length costs one nesting
-- level, not one per link (PostgreSQL's stack would end a deep recursion).
--
-- Set-based: one completion releasing 10,000 dependents is a few UPDATEs joining the edge index
-- to the primary key (the LATERAL ... OFFSET 0 keeps each dependent a primary-key probe). enable_seqscan = off keeps it that way on any table size and any statistics
-- (a plan reading all of dispatch_tasks to release a few thousand rows would hold up the
-- completing transaction for as long as the table is large); it holds for this function's
-- statements and the triggers those fire, and ends with it (as does the
-- dispatch.settling_dependents flag, a local setting made inside it). Joins are left to the
-- planner: the nested triggers join their transition tables by hash.
--
-- Dependents change in id order, 200 per statement (locked first, in that order), so two
-- transactions settling overlapping sets of dependents wait for each other rather than
-- deadlock. 500 per statement, not all at once: the statement triggers that follow each UPDATE
-- (scope counters, wake-up, agent load) join their transition tables with the plan cached at
-- their first call in the session, a nested loop when that call saw one row, so their cost grows
-- with the square of the rows one statement changes (10,000 rows in one statement: seconds;
-- 200 per statement: measured in bench/scenarios/dependencies.ts).
CREATE FUNCTION dispatch_settle_ended(ended_ids uuid[], ended_statuses text[]) RETURNS void LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
  chunk CONSTANT integer := 200;
  level_ids uuid[] := ended_ids;
  level_statuses text[] := ended_statuses;
  next_ids uuid[];
  cancelled_ids uuid[];
  targets uuid[];
  causes uuid[];
  cause_statuses text[];
  counts integer[];
  i integer;
BEGIN
  PERFORM set_config('dispatch.settling_dependents', 'on', true);
  WHILE level_ids IS NOT NULL LOOP
    next_ids := NULL;
    -- Dependents of a task that did not complete, whose policy is cancel: cancelled, naming it.
    SELECT array_agg(task_id ORDER BY task_id), array_agg(dependency ORDER BY task_id), array_agg(dependency_status ORDER BY task_id)
      INTO targets, causes, cause_statuses
      FROM (SELECT DISTINCT ON (d.task_id) d.task_id, e.id AS dependency, e.status AS dependency_status
              FROM unnest(level_ids, level_statuses) AS e(id, status)
              JOIN dispatch_task_dependencies d ON d.depends_on_id = e.id
             WHERE e.status <> 'completed'
             ORDER BY d.task_id, e.id) hit;
    FOR i IN 0 .. coalesce(cardinality(targets) - 1, -1) / chunk LOOP
      WITH hit AS (
        SELECT * FROM unnest(targets[i * chunk + 1 : (i + 1) * chunk], causes[i * chunk + 1 : (i + 1) * chunk],
                             cause_statuses[i * chunk + 1 : (i + 1) * chunk]) AS h(task_id, dependency, dependency_status)
      ), doomed AS MATERIALIZED (
        SELECT t.id, hit.dependency, hit.dependency_status
          FROM hit CROSS JOIN LATERAL (SELECT * FROM dispatch_tasks x WHERE x.id = hit.task_id OFFSET 0) t
         WHERE t.status = 'waiting' AND t.on_dependency_failure = 'cancel'
         ORDER BY t.id
           FOR UPDATE OF t
      ), c AS (
        -- The guard is written so the planner cannot answer it from dispatch_tasks_waiting_idx:
        -- scanning every waiting task for each batch is what the primary key avoids.
        UPDATE dispatch_tasks t
           SET status = 'cancelled', completed_at = now(),
               error = format('dependency %s ended %s', doomed.dependency, doomed.dependency_status)
          FROM doomed
         WHERE t.id = doomed.id AND coalesce(t.status, '') = 'waiting'
        RETURNING t.id, t.attempt, t.error, doomed.dependency, doomed.dependency_status
      ), e AS (
        INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
        SELECT id, 'cancelled', NULL, attempt,
               jsonb_build_object('task_id', id, 'cancelled_by', 'dependency', 'reason', error,
                                  'dependency_id', dependency, 'dependency_status', dependency_status)
          FROM c
      )
      SELECT array_agg(id) INTO cancelled_ids FROM c;
      next_ids := next_ids || cancelled_ids;
    END LOOP;

    -- Every other waiting dependent counts these dependencies off; at 0 it becomes pending, and
    -- the wake-up trigger (migration 0002) requests an assignment pass for this commit.
    SELECT array_agg(task_id ORDER BY task_id), array_agg(n ORDER BY task_id) INTO targets, counts
      FROM (SELECT d.task_id, count(*)::integer AS n
              FROM unnest(level_ids) AS e(id)
              JOIN dispatch_task_dependencies d ON d.depends_on_id = e.id
             GROUP BY d.task_id) counted;
    FOR i IN 0 .. coalesce(cardinality(targets) - 1, -1) / chunk LOOP
      WITH counted AS (
        SELECT * FROM unnest(targets[i * chunk + 1 : (i + 1) * chunk], counts[i * chunk + 1 : (i + 1) * chunk]) AS c(task_id, n)
      ), ready AS MATERIALIZED (
        SELECT t.id, counted.n
          FROM counted CROSS JOIN LATERAL (SELECT * FROM dispatch_tasks x WHERE x.id = counted.task_id OFFSET 0) t
         WHERE t.status = 'waiting'
         ORDER BY t.id
           FOR UPDATE OF t
      ), r AS (
        UPDATE dispatch_tasks t
           SET waiting_on = greatest(t.waiting_on - ready.n, 0),
               status = CASE WHEN t.waiting_on <= ready.n THEN 'pending' ELSE 'waiting' END
          FROM ready
         WHERE t.id = ready.id AND coalesce(t.status, '') = 'waiting'
        RETURNING t.id, t.status, t.attempt
      )
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'released', NULL, attempt, jsonb_build_object('task_id', id, 'reason', 'every dependency ended')
        FROM r WHERE status = 'pending';
    END LOOP;

    level_ids := next_ids;
    level_statuses := CASE WHEN next_ids IS NOT NULL THEN array_fill('cancelled'::text, ARRAY[cardinality(next_ids)]) END;
  END LOOP;
  PERFORM set_config('dispatch.settling_dependents', '', true);
END $$;
COMMENT ON FUNCTION dispatch_settle_ended(uuid[], text[]) IS 'Settles the dependents of tasks that ended (parallel arrays: id, terminal status): cancels those whose policy is cancel when a dependency did not complete (event cancelled, error naming it), then counts the ended dependencies off the others, making pending (event released) those with none left; repeats for the tasks it cancelled.';

CREATE TRIGGER dispatch_tasks_settle_dependents AFTER UPDATE ON dispatch_tasks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_settle_dependents();
`,
    )
    .execute(db);
}
