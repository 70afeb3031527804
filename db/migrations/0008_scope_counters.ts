import { type Kysely, sql } from 'kysely';

/**
 * Per-scope counters for the metrics scrape (and, later, /api/v1/scopes), so a scrape reads a
 * few hundred rows whatever the size of dispatch_tasks.
 *
 * dispatch_scope_counts is kept exact by statement triggers with transition tables: one net change
 * per (scope, status) per statement, so a group-commit insert of 500 tasks or an assignment batch
 * costs one row per scope touched, and no path (a DBA's UPDATE, the agent-stop trigger) can skip
 * it. The changes are appended, never applied to a shared row: an UPDATE of one counter row per
 * scope would make every writer of that scope wait for the previous one to commit, and a client
 * holding a transaction open after inserting a task would stall every create in its scope.
 * Readers sum the rows of a key; dispatch_fold_scope_counters() (run every second by one replica,
 * src/tasks/scope-counter-folding.ts) folds the committed rows of each key into one.
 *
 * dispatch_scope_observations holds the histograms (created->assigned, started->finished) and
 * the finished counters, written by the same update trigger from the old and new row of each
 * task. Observing in the database rather than in the replica that made the transition: some
 * transitions happen in SQL only (an agent stopping fails or returns its tasks; a DBA's fix), so
 * no replica could see them; every replica then reports the same, cluster-wide series, and
 * dashboards take max() across replicas instead of sum().
 *
 *
 * Forward-only. Counts are filled from the rows present, under a SHARE lock so no write slips
 * between the fill and the triggers; finished counters are filled from finished rows still kept.
 * Histograms start empty: the attempts of past tasks are not on their rows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
LOCK TABLE dispatch_tasks IN SHARE MODE;

CREATE TABLE dispatch_scope_counts (
  scope   text NOT NULL,
  status  text NOT NULL CHECK (status IN ('pending', 'assigned', 'running')),
  tasks   bigint NOT NULL
);
CREATE INDEX dispatch_scope_counts_key ON dispatch_scope_counts (scope, status);
COMMENT ON TABLE dispatch_scope_counts IS 'Open tasks per scope and status: the sum of tasks over the rows of a (scope, status) is how many there are now. Statement triggers on dispatch_tasks append changes; dispatch_fold_scope_counters() folds them into one row per key. A key summing to 0 stays, so a scope seen once keeps reporting. Read with sum() ... GROUP BY scope, status.';
COMMENT ON COLUMN dispatch_scope_counts.scope IS 'Task scope (dispatch_tasks.scope).';
COMMENT ON COLUMN dispatch_scope_counts.status IS 'pending, assigned or running.';
COMMENT ON COLUMN dispatch_scope_counts.tasks IS 'A change in the number of tasks of this scope in this status (negative when they left it); summed per key.';

CREATE TABLE dispatch_scope_observations (
  scope         text NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('finished', 'schedule_to_start', 'run')),
  outcome       text NOT NULL,
  le            float8 NOT NULL,
  observations  bigint NOT NULL CHECK (observations >= 0),
  seconds       float8 NOT NULL
);
CREATE INDEX dispatch_scope_observations_key ON dispatch_scope_observations (scope, kind, outcome, le);
COMMENT ON TABLE dispatch_scope_observations IS 'Monotonic histograms per scope, per bucket (not cumulative): the sums over the rows of a (scope, kind, outcome, le) key. The task triggers append observations; dispatch_fold_scope_counters() folds each key into one row. Never decremented: retention deleting tasks does not change them.';
COMMENT ON COLUMN dispatch_scope_observations.scope IS 'Task scope.';
COMMENT ON COLUMN dispatch_scope_observations.kind IS 'finished: a task entered a terminal status (seconds from created_at); schedule_to_start: an assignment (seconds waiting pending); run: an attempt ended (seconds from started_at, or assigned_at if it never reported progress).';
COMMENT ON COLUMN dispatch_scope_observations.outcome IS 'finished and run: the terminal status reached, or retried when the attempt ended with the task back to pending; empty for schedule_to_start.';
COMMENT ON COLUMN dispatch_scope_observations.le IS 'Upper bound of the bucket in seconds (one of dispatch_latency_buckets(); Infinity for the last).';
COMMENT ON COLUMN dispatch_scope_observations.observations IS 'Observations that fell in this bucket (and in no lower one); summed per key.';
COMMENT ON COLUMN dispatch_scope_observations.seconds IS 'Sum of those observations in seconds; summed per key.';

CREATE FUNCTION dispatch_latency_buckets() RETURNS float8[] LANGUAGE sql IMMUTABLE AS $$
  SELECT ARRAY[0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 'Infinity']::float8[]
$$;
COMMENT ON FUNCTION dispatch_latency_buckets() IS 'Histogram bucket upper bounds in seconds for dispatch_scope_observations, from 10 ms to an hour; the metrics scrape reads them from here.';

CREATE FUNCTION dispatch_latency_bucket(seconds float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT min(b) FROM unnest(dispatch_latency_buckets()) AS b WHERE seconds <= b
$$;
COMMENT ON FUNCTION dispatch_latency_bucket(float8) IS 'The smallest bucket bound an observation of this many seconds falls under.';

CREATE FUNCTION dispatch_record_observations(scopes text[], kinds text[], outcomes text[], secs float8[]) RETURNS integer
LANGUAGE sql VOLATILE AS $$
  WITH added AS (
  INSERT INTO dispatch_scope_observations (scope, kind, outcome, le, observations, seconds)
  SELECT s, k, o, dispatch_latency_bucket(greatest(x, 0)), count(*), sum(greatest(x, 0))
    FROM unnest(scopes, kinds, outcomes, secs) AS u(s, k, o, x)
   GROUP BY 1, 2, 3, 4
  )
  -- A data-modifying WITH runs to completion whether or not the outer query reads it.
  SELECT cardinality(scopes)
$$;
COMMENT ON FUNCTION dispatch_record_observations(text[], text[], text[], float8[]) IS 'Appends observations (parallel arrays: scope, kind, outcome, seconds) to dispatch_scope_observations, one row per bucket touched; returns how many observations.';

CREATE FUNCTION dispatch_scope_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO dispatch_scope_counts (scope, status, tasks)
  SELECT scope, status, count(*) FROM new_rows
   WHERE status IN ('pending', 'assigned', 'running')
   GROUP BY scope, status;
  -- The service never inserts a finished task; a DBA's import may, and it still counts as finished.
  PERFORM dispatch_record_observations(array_agg(scope), array_agg('finished'::text), array_agg(status),
                                       array_agg(extract(epoch FROM coalesce(completed_at, now()) - created_at)::float8))
     FROM new_rows WHERE status IN ('completed', 'failed', 'cancelled', 'timeout')
   HAVING count(*) > 0;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_scope_counts_on_insert() IS 'Statement trigger: adds new open tasks to dispatch_scope_counts, and tasks inserted already finished to the finished counters of dispatch_scope_observations.';

CREATE FUNCTION dispatch_scope_counts_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Retention deletes finished tasks only, so this is usually a no-op; a DBA's DELETE of open
  -- tasks must still leave the counts exact.
  INSERT INTO dispatch_scope_counts (scope, status, tasks)
  SELECT scope, status, -count(*) FROM old_rows
   WHERE status IN ('pending', 'assigned', 'running')
   GROUP BY scope, status;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_scope_counts_on_delete() IS 'Statement trigger: removes deleted open tasks from dispatch_scope_counts.';

CREATE FUNCTION dispatch_scope_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  observed_count integer;
BEGIN
  WITH delta AS (
    SELECT scope, status, count(*) AS n FROM new_rows
     WHERE status IN ('pending', 'assigned', 'running') GROUP BY scope, status
    UNION ALL
    SELECT scope, status, -count(*) FROM old_rows
     WHERE status IN ('pending', 'assigned', 'running') GROUP BY scope, status
  ), net AS (
    SELECT scope, status, sum(n)::bigint AS n FROM delta GROUP BY scope, status HAVING sum(n) <> 0
  )
  INSERT INTO dispatch_scope_counts (scope, status, tasks)
  SELECT scope, status, n FROM net;

  WITH pair AS (
    SELECT n.scope, n.status, o.status AS was, n.attempt, o.attempt AS was_attempt,
           n.created_at, n.assigned_at, n.completed_at,
           -- Waiting since: creation for a first attempt; for a later one, when it came back to
           -- pending, or when its retry backoff ended if that is later.
           CASE WHEN o.attempt = 0 THEN n.created_at ELSE greatest(o.updated_at, o.not_before) END AS ready_at,
           coalesce(o.started_at, o.assigned_at) AS ran_from
      FROM new_rows n JOIN old_rows o USING (id)
  ), observed AS (
    SELECT scope, 'finished'::text AS kind, status AS outcome,
           extract(epoch FROM coalesce(completed_at, now()) - created_at)::float8 AS s
      FROM pair
     WHERE status IN ('completed', 'failed', 'cancelled', 'timeout')
       AND was NOT IN ('completed', 'failed', 'cancelled', 'timeout')
    UNION ALL
    SELECT scope, 'schedule_to_start', '', extract(epoch FROM assigned_at - ready_at)::float8
      FROM pair
     WHERE attempt > was_attempt AND status IN ('assigned', 'running') AND assigned_at IS NOT NULL
    UNION ALL
    SELECT scope, 'run', CASE WHEN status IN ('assigned', 'running', 'pending') THEN 'retried' ELSE status END,
           extract(epoch FROM coalesce(completed_at, now()) - ran_from)::float8
      FROM pair
     WHERE was IN ('assigned', 'running') AND ran_from IS NOT NULL
       AND (status NOT IN ('assigned', 'running') OR attempt <> was_attempt)
  )
  SELECT dispatch_record_observations(array_agg(scope), array_agg(kind), array_agg(outcome), array_agg(s))
    INTO observed_count
    FROM observed HAVING count(*) > 0;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_scope_counts_on_update() IS 'Statement trigger: applies the net change of open tasks per scope and status to dispatch_scope_counts, and records finishes, assignments and ended attempts in dispatch_scope_observations.';

CREATE FUNCTION dispatch_fold_scope_counters() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  folded integer;
BEGIN
  -- One replica at a time; another finding the lock taken has nothing to do this round.
  IF NOT pg_try_advisory_xact_lock(72142505) THEN
    RETURN 0;
  END IF;
  -- Only committed rows are seen, so a change still in flight is left for the next round.
  WITH gone AS (DELETE FROM dispatch_scope_counts RETURNING scope, status, tasks)
  INSERT INTO dispatch_scope_counts (scope, status, tasks)
  SELECT scope, status, sum(tasks) FROM gone GROUP BY scope, status;
  GET DIAGNOSTICS folded = ROW_COUNT;
  WITH gone AS (DELETE FROM dispatch_scope_observations RETURNING scope, kind, outcome, le, observations, seconds)
  INSERT INTO dispatch_scope_observations (scope, kind, outcome, le, observations, seconds)
  SELECT scope, kind, outcome, le, sum(observations), sum(seconds) FROM gone GROUP BY scope, kind, outcome, le;
  RETURN folded;
END $$;
COMMENT ON FUNCTION dispatch_fold_scope_counters() IS 'Folds the committed rows of each key of dispatch_scope_counts and dispatch_scope_observations into one, under advisory lock 72142505 (one replica at a time); returns how many count keys remain. Run every second by src/tasks/scope-counter-folding.ts.';

CREATE TRIGGER dispatch_tasks_scope_counts_on_insert AFTER INSERT ON dispatch_tasks
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_scope_counts_on_insert();
CREATE TRIGGER dispatch_tasks_scope_counts_on_update AFTER UPDATE ON dispatch_tasks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_scope_counts_on_update();
CREATE TRIGGER dispatch_tasks_scope_counts_on_delete AFTER DELETE ON dispatch_tasks
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_scope_counts_on_delete();

-- The oldest pending task of one scope in one index probe: the scrape walks the scopes in
-- dispatch_scope_counts and takes the first entry of each here (LATERAL ... LIMIT 1).
CREATE INDEX dispatch_tasks_pending_by_scope_idx ON dispatch_tasks (scope, created_at) WHERE status = 'pending';
COMMENT ON INDEX dispatch_tasks_pending_by_scope_idx IS 'Pending tasks by scope, oldest first: dispatch_oldest_pending_seconds reads one entry per scope.';

INSERT INTO dispatch_scope_counts (scope, status, tasks)
SELECT scope, status, count(*) FROM dispatch_tasks
 WHERE status IN ('pending', 'assigned', 'running')
 GROUP BY scope, status;

SELECT dispatch_record_observations(array_agg(scope), array_agg('finished'::text), array_agg(status),
                                    array_agg(extract(epoch FROM completed_at - created_at)::float8))
  FROM dispatch_tasks
 WHERE status IN ('completed', 'failed', 'cancelled', 'timeout')
HAVING count(*) > 0;
`,
    )
    .execute(db);
}
