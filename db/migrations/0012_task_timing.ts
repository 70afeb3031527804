import { type Kysely, sql } from 'kysely';

/**
 * Time in the queue: delayed tasks (run_at), expiry (start_by) and aging (rank).
 *
 * Delayed tasks reuse not_before, the gate the claim already honours for retry backoff: a task
 * created with run_at (or delay_ms) gets not_before = run_at, and run_at keeps what was asked
 * for (not_before is cleared at assignment and rewritten by a retry).
 *
 * Wake-ups at a time. Until now a retry's end of backoff enqueued one `assignment:run` job per
 * second of due time (dispatch_request_assignment_at, kept for other callers). graphile-worker finds future jobs only by
 * polling (worker.poll_interval_ms, 500 ms), and a later task due in the same second as the job
 * was left for the 5 s tick. Instead, every replica keeps one timer, armed for the earliest due
 * time the database holds (src/lifecycle/due-timer.ts reads it from the two partial indexes
 * below): 10,000 delayed tasks are one timer per replica, and a restart loses nothing, since the
 * times live in the rows. A statement that makes a task due later (created delayed, with a
 * start_by, or back to pending after a backoff) sends one NOTIFY on `dispatch_due` carrying the
 * earliest such time in epoch milliseconds; a replica whose timer is armed later re-reads. One
 * NOTIFY per statement, not per row (the group commit inserts many tasks per statement), and only
 * for timed tasks: tasks due now keep the NOTIFY-free wake-up of migration 0002.
 *
 * Expiry: a task still pending at start_by ends `timeout` with timeout_reason 'expired'. "Start"
 * is the assignment: an agent may work without ever reporting progress (v1 clients complete
 * straight from assigned), so an assigned task is never expired; its attempt timeout governs it.
 * The claim skips tasks past start_by and the expiry update is guarded by status = 'pending', and
 * both lock the row, so a task is either assigned (assigned_at < start_by) or expired, never both.
 *
 * Aging: rank = ready time + (priority - 1) x assignment.aging_ms, where the ready time is run_at
 * for a delayed task and created_at otherwise. Claiming in rank order is claiming by effective
 * priority (priority minus one level per aging_ms waited), oldest first within a level, since
 * now is the same for every row; the order is stored, so the claim walks a plain index. A
 * priority-5 task therefore overtakes every priority-1 task that became ready more than
 * 4 x aging_ms after it. aging_ms = 0 disables aging: the levels are then 1000 years apart,
 * which is strict priority order for any queue that exists. The app computes rank at insert;
 * a trigger fills it for a row inserted without one (a DBA's import) and recomputes it when the
 * priority changes, with the aging of the session (dispatch.aging_ms, set by Dispatch on its
 * connections; 60000 elsewhere). The index on (rank, id) replaces the one on (priority,
 * created_at, id), so inserts maintain one claim index, not two.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
ALTER TABLE dispatch_tasks
  ADD COLUMN run_at timestamptz,
  ADD COLUMN start_by timestamptz,
  ADD COLUMN timeout_reason text
    CONSTRAINT dispatch_tasks_timeout_reason_check CHECK (timeout_reason IN ('expired', 'execution', 'heartbeat')),
  ADD COLUMN rank timestamptz;
COMMENT ON COLUMN dispatch_tasks.run_at IS 'Requested earliest assignment (run_at, or creation + delay_ms); null when the task was not delayed. Copied into not_before at creation, which is what the claim reads.';
COMMENT ON COLUMN dispatch_tasks.start_by IS 'Expiry: a task still pending (not assigned) at this instant ends timeout with timeout_reason expired. Null: never expires.';
COMMENT ON COLUMN dispatch_tasks.timeout_reason IS 'Why a task ended timeout: expired (not assigned by start_by), execution (timeout_ms) or heartbeat (heartbeat_timeout_ms); null for other statuses.';
COMMENT ON COLUMN dispatch_tasks.rank IS 'Claim order (aging): ready time (run_at, else created_at) + (priority - 1) x assignment.aging_ms. Pending tasks are claimed in rank order; see dispatch_task_rank().';
COMMENT ON COLUMN dispatch_tasks.priority IS '1 (most urgent) to 5; pending work is taken in rank order: priority raised one level per assignment.aging_ms waited, then oldest first.';
COMMENT ON COLUMN dispatch_tasks.not_before IS 'A pending task is not assigned before this instant: run_at of a delayed task, or the end of a retry backoff.';

CREATE FUNCTION dispatch_task_rank(ready_at timestamptz, priority integer) RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT ready_at + (priority - 1) * CASE WHEN aging_ms > 0 THEN make_interval(secs => aging_ms / 1000.0) ELSE interval '1000 years' END
    FROM (SELECT coalesce(nullif(current_setting('dispatch.aging_ms', true), '')::integer, 60000) AS aging_ms) AS s
$$;
COMMENT ON FUNCTION dispatch_task_rank(timestamptz, integer) IS 'Claim order of a task ready at ready_at: one priority level per dispatch.aging_ms (session setting, default 60000; 0: no aging, levels 1000 years apart).';

CREATE FUNCTION dispatch_tasks_fill_rank() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.rank := dispatch_task_rank(coalesce(NEW.run_at, NEW.created_at), NEW.priority);
  RETURN NEW;
END $$;
COMMENT ON FUNCTION dispatch_tasks_fill_rank() IS 'Computes rank for a task inserted without one, or whose priority changed.';
-- The WHEN clauses are evaluated without calling the function: the service's inserts carry a
-- rank and pay nothing for these triggers.
CREATE TRIGGER dispatch_tasks_rank_on_insert BEFORE INSERT ON dispatch_tasks
  FOR EACH ROW WHEN (NEW.rank IS NULL) EXECUTE FUNCTION dispatch_tasks_fill_rank();
CREATE TRIGGER dispatch_tasks_rank_on_update BEFORE UPDATE OF priority, rank ON dispatch_tasks
  FOR EACH ROW WHEN (NEW.priority IS DISTINCT FROM OLD.priority OR NEW.rank IS NULL) EXECUTE FUNCTION dispatch_tasks_fill_rank();

-- Open tasks get their rank now (finished ones never return to pending). The aging of the
-- migrating session applies: Dispatch migrates on its own connections.
UPDATE dispatch_tasks SET rank = dispatch_task_rank(created_at, priority) WHERE status IN ('pending', 'assigned', 'running');

DROP INDEX dispatch_tasks_pending_idx;
CREATE INDEX dispatch_tasks_pending_rank_idx ON dispatch_tasks (rank, id) INCLUDE (scope) WHERE status = 'pending';
COMMENT ON INDEX dispatch_tasks_pending_rank_idx IS 'The claim: pending tasks in rank (aging) order.';
CREATE INDEX dispatch_tasks_not_before_idx ON dispatch_tasks (not_before) WHERE status = 'pending' AND not_before IS NOT NULL;
COMMENT ON INDEX dispatch_tasks_not_before_idx IS 'Pending tasks waiting until a time (run_at or retry backoff): the due timer reads the earliest.';
CREATE INDEX dispatch_tasks_start_by_idx ON dispatch_tasks (start_by) WHERE status = 'pending' AND start_by IS NOT NULL;
COMMENT ON INDEX dispatch_tasks_start_by_idx IS 'Pending tasks that expire: the due timer reads the earliest start_by and expires those past it.';

-- Tells the replicas' due timers about a time earlier than the one they may be armed for.
CREATE FUNCTION dispatch_notify_due(due timestamptz) RETURNS void LANGUAGE sql AS $$
  SELECT pg_notify('dispatch_due', floor(extract(epoch FROM due) * 1000)::bigint::text)
$$;
COMMENT ON FUNCTION dispatch_notify_due(timestamptz) IS 'NOTIFY dispatch_due with a due time in epoch milliseconds: replicas armed later re-read the earliest due time (src/lifecycle/due-timer.ts).';

CREATE OR REPLACE FUNCTION dispatch_tasks_wake_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  due timestamptz;
BEGIN
  -- Tasks marked unmatched on insert have nobody to go to, and delayed ones are not due yet:
  -- only the others need an assigner now.
  IF EXISTS (SELECT 1 FROM new_rows WHERE status = 'pending' AND unmatched_at IS NULL
                                      AND (not_before IS NULL OR not_before <= now())) THEN
    PERFORM dispatch_request_assignment();
  END IF;
  SELECT min(least(CASE WHEN not_before > now() THEN not_before END, start_by)) INTO due
    FROM new_rows WHERE status = 'pending';
  IF due IS NOT NULL THEN
    PERFORM dispatch_notify_due(due);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION dispatch_tasks_wake_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  due timestamptz;
BEGIN
  -- Tasks that came back to pending (retry, reassignment, failed wake): ready now, or after
  -- backoff; either way one that may expire needs the due timer to know.
  IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o USING (id)
              WHERE n.status = 'pending' AND o.status <> 'pending'
                AND (n.not_before IS NULL OR n.not_before <= now())) THEN
    PERFORM dispatch_request_assignment();
  END IF;
  SELECT min(least(CASE WHEN n.not_before > now() THEN n.not_before END, n.start_by)) INTO due
    FROM new_rows n JOIN old_rows o USING (id)
   WHERE n.status = 'pending' AND o.status <> 'pending';
  IF due IS NOT NULL THEN
    PERFORM dispatch_notify_due(due);
  END IF;
  RETURN NULL;
END $$;

-- dispatch_request_assignment_at() stays for callers that want a pass at a time no task row
-- holds; the task triggers above no longer use it.

-- The schedule-to-start histogram counts a delayed task's wait from its run_at, not its creation.
CREATE OR REPLACE FUNCTION dispatch_scope_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
           -- Waiting since: creation for a first attempt, or its run_at if delayed (migration
           -- 0012); for a later one, when it came back to pending, or when its retry backoff
           -- ended if that is later. (greatest() skips nulls.)
           CASE WHEN o.attempt = 0 THEN greatest(n.created_at, o.not_before) ELSE greatest(o.updated_at, o.not_before) END AS ready_at,
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

-- DBAs: pending work split by what it waits for.
CREATE OR REPLACE VIEW dispatch_queue_depth AS
  SELECT scope, status, count(*) AS tasks, min(created_at) AS oldest_created_at,
         CASE WHEN status <> 'pending' THEN NULL WHEN not_before > now() THEN 'time' ELSE 'agent' END AS waiting_for
    FROM dispatch_tasks
   WHERE status IN ('pending', 'assigned', 'running')
   GROUP BY scope, status, 5;
COMMENT ON VIEW dispatch_queue_depth IS 'Open work by scope and status, with the age of the oldest task; pending work is split by waiting_for: time (delayed, or in retry backoff) or agent (due, waiting for a free capable agent).';

CREATE VIEW dispatch_scheduled_tasks AS
  SELECT id, scope, priority, not_before AS waiting_until, run_at, start_by, not_before - now() AS due_in,
         CASE WHEN run_at IS NOT NULL AND not_before = run_at THEN 'run_at' ELSE 'retry backoff' END AS reason
    FROM dispatch_tasks
   WHERE status = 'pending' AND not_before > now();
COMMENT ON VIEW dispatch_scheduled_tasks IS 'Pending tasks waiting until a time (run_at or a retry backoff), not for an agent; ORDER BY waiting_until reads dispatch_tasks_not_before_idx.';
`,
    )
    .execute(db);
}
