import { type Kysely, sql } from 'kysely';

/**
 * The queue, its audit trail and the agent directory. Every rule that protects the data lives
 * here too, so a DBA's hand-written UPDATE cannot break what the service relies on.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE TABLE dispatch_tasks (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  requester             text NOT NULL CHECK (length(requester) BETWEEN 1 AND 200),
  title                 text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
  description           text,
  scope                 text NOT NULL CHECK (length(scope) BETWEEN 1 AND 200 AND scope = lower(scope)),
  priority              smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
  status                text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'assigned', 'running', 'completed', 'failed', 'cancelled', 'timeout')),
  assignee              text,
  attempt               integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  result                jsonb,
  error                 text,
  context               jsonb,
  timeout_ms            integer NOT NULL DEFAULT 300000 CHECK (timeout_ms > 0),
  heartbeat_timeout_ms  integer CHECK (heartbeat_timeout_ms > 0),
  start_timeout_ms      integer CHECK (start_timeout_ms > 0),
  max_retries           integer NOT NULL DEFAULT 1 CHECK (max_retries >= 0),
  retry_count           integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
  reassign_count        integer NOT NULL DEFAULT 0 CHECK (reassign_count >= 0),
  parent_id             uuid REFERENCES dispatch_tasks (id) ON DELETE SET NULL,
  idempotency_key       text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
  not_before            timestamptz,
  avoid_agent           text,
  deadline_at           timestamptz,
  last_progress_at      timestamptz,
  unmatched_at          timestamptz,
  start_alarm_at        timestamptz,
  placement             jsonb,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  assigned_at           timestamptz,
  started_at            timestamptz,
  completed_at          timestamptz,
  CONSTRAINT dispatch_tasks_active_has_assignee
    CHECK (status NOT IN ('assigned', 'running') OR (assignee IS NOT NULL AND assigned_at IS NOT NULL)),
  CONSTRAINT dispatch_tasks_retries_within_budget CHECK (retry_count <= max_retries),
  CONSTRAINT dispatch_tasks_terminal_is_stamped
    CHECK (status NOT IN ('completed', 'failed', 'cancelled', 'timeout') OR completed_at IS NOT NULL)
) WITH (
  -- The queue is update-heavy: leave room on each page for HOT updates, and vacuum after a
  -- small fraction of changes so dead entries in the pending index do not pile up between runs.
  fillfactor = 80,
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_insert_scale_factor = 0.05,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_delay = 0
);

COMMENT ON TABLE dispatch_tasks IS 'The work queue: one row per task, from request to a terminal status. Written only through conditional updates that check status, assignee and attempt.';
COMMENT ON COLUMN dispatch_tasks.id IS 'Server-generated task id.';
COMMENT ON COLUMN dispatch_tasks.requester IS 'X-Agent-ID of the agent (or NATS requester) that created the task.';
COMMENT ON COLUMN dispatch_tasks.title IS 'Short human-readable summary; required.';
COMMENT ON COLUMN dispatch_tasks.description IS 'Optional longer description of the work.';
COMMENT ON COLUMN dispatch_tasks.scope IS 'Capability tag the task needs, stored lower-cased; an agent qualifies when its capabilities contain it.';
COMMENT ON COLUMN dispatch_tasks.priority IS '1 (most urgent) to 5; pending work is taken in priority order, then oldest first.';
COMMENT ON COLUMN dispatch_tasks.status IS 'pending, assigned, running (terminal: completed, failed, cancelled, timeout).';
COMMENT ON COLUMN dispatch_tasks.assignee IS 'Agent that holds (or last held) the task.';
COMMENT ON COLUMN dispatch_tasks.attempt IS 'Lease number: incremented at every assignment. Calls from an agent carrying an older attempt are rejected.';
COMMENT ON COLUMN dispatch_tasks.result IS 'JSON result reported on completion.';
COMMENT ON COLUMN dispatch_tasks.error IS 'Reason given on failure, timeout or reassignment-budget exhaustion.';
COMMENT ON COLUMN dispatch_tasks.context IS 'Free-form JSON input for the worker.';
COMMENT ON COLUMN dispatch_tasks.timeout_ms IS 'Execution timeout, counted from started_at, or from assigned_at until the task starts.';
COMMENT ON COLUMN dispatch_tasks.heartbeat_timeout_ms IS 'Optional: longest silence allowed between progress reports before the attempt is timed out.';
COMMENT ON COLUMN dispatch_tasks.start_timeout_ms IS 'Optional: how long the task may wait pending before an operator alarm is raised (it is not failed).';
COMMENT ON COLUMN dispatch_tasks.max_retries IS 'How many times a failed or timed-out task is tried again.';
COMMENT ON COLUMN dispatch_tasks.retry_count IS 'Retries spent so far (never more than max_retries).';
COMMENT ON COLUMN dispatch_tasks.reassign_count IS 'Times the task went back to pending because its agent stopped; limited by lifecycle.reassign_budget.';
COMMENT ON COLUMN dispatch_tasks.parent_id IS 'Optional task this one was spawned from.';
COMMENT ON COLUMN dispatch_tasks.idempotency_key IS 'Idempotency-Key header of the create request; unique per requester.';
COMMENT ON COLUMN dispatch_tasks.not_before IS 'Retry backoff: a pending task is not assigned before this instant.';
COMMENT ON COLUMN dispatch_tasks.avoid_agent IS 'Agent that last failed or timed out this task; another capable agent is preferred.';
COMMENT ON COLUMN dispatch_tasks.deadline_at IS 'When the current attempt times out (execution or heartbeat, whichever is sooner); null unless assigned or running.';
COMMENT ON COLUMN dispatch_tasks.last_progress_at IS 'Last progress report of the current attempt.';
COMMENT ON COLUMN dispatch_tasks.unmatched_at IS 'Set once when no capable agent existed for this pending task; cleared when it is assigned.';
COMMENT ON COLUMN dispatch_tasks.start_alarm_at IS 'Set once when the task waited pending longer than its start timeout.';
COMMENT ON COLUMN dispatch_tasks.placement IS 'Why the last placement went the way it did: candidates, scores, and why the others lost.';
COMMENT ON COLUMN dispatch_tasks.created_at IS 'When the task was requested.';
COMMENT ON COLUMN dispatch_tasks.updated_at IS 'Last change to the row (maintained by trigger).';
COMMENT ON COLUMN dispatch_tasks.assigned_at IS 'When the current attempt was assigned.';
COMMENT ON COLUMN dispatch_tasks.started_at IS 'First progress report of the current attempt.';
COMMENT ON COLUMN dispatch_tasks.completed_at IS 'When the task reached a terminal status.';

-- Pending work in the order it is taken. Partial, so finished tasks never enter the hot index.
CREATE INDEX dispatch_tasks_pending_idx ON dispatch_tasks (priority, created_at, id) INCLUDE (scope)
  WHERE status = 'pending';
-- Active tasks by agent: drain views, reassignment when an agent stops, the agent list.
CREATE INDEX dispatch_tasks_active_by_assignee_idx ON dispatch_tasks (assignee)
  WHERE status IN ('assigned', 'running');
-- The timeout sweep's safety net and the overdue view.
CREATE INDEX dispatch_tasks_deadline_idx ON dispatch_tasks (deadline_at)
  WHERE status IN ('assigned', 'running');
-- Listing, newest first, with keyset pagination; and by requester.
CREATE INDEX dispatch_tasks_created_idx ON dispatch_tasks (created_at DESC, id DESC);
CREATE INDEX dispatch_tasks_requester_idx ON dispatch_tasks (requester, created_at DESC, id DESC);
CREATE INDEX dispatch_tasks_assignee_idx ON dispatch_tasks (assignee, created_at DESC, id DESC) WHERE assignee IS NOT NULL;
-- Recent outcomes for /api/v1/stats without scanning history.
CREATE INDEX dispatch_tasks_completed_idx ON dispatch_tasks (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX dispatch_tasks_parent_idx ON dispatch_tasks (parent_id) WHERE parent_id IS NOT NULL;
CREATE UNIQUE INDEX dispatch_tasks_idempotency_idx ON dispatch_tasks (requester, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE TABLE dispatch_task_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id    uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
  task_id     uuid NOT NULL REFERENCES dispatch_tasks (id) ON DELETE CASCADE,
  event       text NOT NULL CHECK (event ~ '^[a-z_]+$'),
  agent_id    text,
  attempt     integer,
  payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_insert_scale_factor = 0.05);

COMMENT ON TABLE dispatch_task_events IS 'Audit trail: one row per state change, written in the same transaction as the change. Ordered by id.';
COMMENT ON COLUMN dispatch_task_events.id IS 'Monotonic sequence; gives the order of events.';
COMMENT ON COLUMN dispatch_task_events.event_id IS 'Globally unique event id, carried in published messages (and used to deduplicate them).';
COMMENT ON COLUMN dispatch_task_events.task_id IS 'Task the event belongs to.';
COMMENT ON COLUMN dispatch_task_events.event IS 'What happened: created, assigned, progress, completed, failed, fail_retry, timeout_retry, timeout_exhausted, reassigned, cancelled, unmatched, context_updated, ...';
COMMENT ON COLUMN dispatch_task_events.agent_id IS 'Agent involved (requester, assignee, or the agent that made the call).';
COMMENT ON COLUMN dispatch_task_events.attempt IS 'Task attempt (lease) the event belongs to.';
COMMENT ON COLUMN dispatch_task_events.payload IS 'Event body as published.';
COMMENT ON COLUMN dispatch_task_events.created_at IS 'When the event was recorded.';
CREATE INDEX dispatch_task_events_task_idx ON dispatch_task_events (task_id, id);

CREATE TABLE dispatch_agents (
  name              text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
  capabilities      text[] NOT NULL DEFAULT '{}',
  status            text NOT NULL DEFAULT 'unknown'
                      CHECK (status IN ('ready', 'sleeping', 'starting', 'busy', 'degraded', 'stopped', 'unknown')),
  source            text NOT NULL DEFAULT 'standalone' CHECK (source IN ('standalone', 'warren')),
  max_concurrent    integer CHECK (max_concurrent > 0),
  active_tasks      integer NOT NULL DEFAULT 0 CHECK (active_tasks >= 0),
  drained           boolean NOT NULL DEFAULT false,
  drained_at        timestamptz,
  drained_by        text,
  last_seen_at      timestamptz,
  last_assigned_at  timestamptz,
  wake_requested_at timestamptz,
  avoid_until       timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);

COMMENT ON TABLE dispatch_agents IS 'Agent directory shared by every replica: capabilities, last known status, drain state and live load.';
COMMENT ON COLUMN dispatch_agents.name IS 'Agent id (the X-Agent-ID it calls with; the persona name in PromptForge and Warren).';
COMMENT ON COLUMN dispatch_agents.capabilities IS 'Lower-cased capability tags; a task goes only to an agent whose tags contain its scope.';
COMMENT ON COLUMN dispatch_agents.status IS 'Last known status: ready, sleeping, starting, busy, degraded, stopped or unknown.';
COMMENT ON COLUMN dispatch_agents.source IS 'standalone: the agent registers itself over REST; warren: synced from Warren and PromptForge.';
COMMENT ON COLUMN dispatch_agents.max_concurrent IS 'Per-agent limit of active tasks; null means assignment.max_concurrent_per_agent.';
COMMENT ON COLUMN dispatch_agents.active_tasks IS 'Tasks assigned or running on this agent right now (kept exact by trigger on dispatch_tasks).';
COMMENT ON COLUMN dispatch_agents.drained IS 'Drained agents keep their tasks but receive no new ones.';
COMMENT ON COLUMN dispatch_agents.drained_at IS 'When the agent was drained.';
COMMENT ON COLUMN dispatch_agents.drained_by IS 'Admin caller (X-Agent-ID) that drained it.';
COMMENT ON COLUMN dispatch_agents.last_seen_at IS 'Last heartbeat (standalone) or last sync from Warren.';
COMMENT ON COLUMN dispatch_agents.last_assigned_at IS 'Last assignment to this agent; the least recently assigned agent wins a tie.';
COMMENT ON COLUMN dispatch_agents.wake_requested_at IS 'When Dispatch last asked Warren to wake this agent.';
COMMENT ON COLUMN dispatch_agents.avoid_until IS 'After a failed wake, the agent gets no new tasks until this instant.';
COMMENT ON COLUMN dispatch_agents.created_at IS 'First time Dispatch saw the agent.';
COMMENT ON COLUMN dispatch_agents.updated_at IS 'Last change to the row (maintained by trigger).';

CREATE FUNCTION dispatch_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
COMMENT ON FUNCTION dispatch_touch_updated_at() IS 'Keeps updated_at current on every row change.';

CREATE TRIGGER dispatch_tasks_touch BEFORE UPDATE ON dispatch_tasks
  FOR EACH ROW EXECUTE FUNCTION dispatch_touch_updated_at();
CREATE TRIGGER dispatch_agents_touch BEFORE UPDATE ON dispatch_agents
  FOR EACH ROW EXECUTE FUNCTION dispatch_touch_updated_at();

-- dispatch_agents.active_tasks is maintained from the tasks table itself, one UPDATE per agent per
-- statement, so a batch assignment of 500 tasks costs one row change per agent, and no code path
-- (nor a DBA's manual fix) can leave the counter wrong.
CREATE FUNCTION dispatch_sync_active_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH delta AS (
    SELECT assignee AS name, count(*) AS n FROM new_rows
     WHERE status IN ('assigned', 'running') AND assignee IS NOT NULL GROUP BY assignee
    UNION ALL
    SELECT assignee, -count(*) FROM old_rows
     WHERE status IN ('assigned', 'running') AND assignee IS NOT NULL GROUP BY assignee
  ), net AS (
    SELECT name, sum(n)::integer AS n FROM delta GROUP BY name HAVING sum(n) <> 0
  )
  UPDATE dispatch_agents a SET active_tasks = a.active_tasks + net.n
    FROM net WHERE a.name = net.name;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_sync_active_tasks() IS 'Statement trigger: applies the net change in active tasks per agent to dispatch_agents.active_tasks.';

CREATE FUNCTION dispatch_sync_active_tasks_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE dispatch_agents a SET active_tasks = a.active_tasks + d.n
    FROM (SELECT assignee, count(*)::integer AS n FROM new_rows
           WHERE status IN ('assigned', 'running') AND assignee IS NOT NULL GROUP BY assignee) d
   WHERE a.name = d.assignee;
  RETURN NULL;
END $$;
CREATE FUNCTION dispatch_sync_active_tasks_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE dispatch_agents a SET active_tasks = greatest(a.active_tasks - d.n, 0)
    FROM (SELECT assignee, count(*)::integer AS n FROM old_rows
           WHERE status IN ('assigned', 'running') AND assignee IS NOT NULL GROUP BY assignee) d
   WHERE a.name = d.assignee;
  RETURN NULL;
END $$;

CREATE TRIGGER dispatch_tasks_active_on_update AFTER UPDATE ON dispatch_tasks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_sync_active_tasks();
CREATE TRIGGER dispatch_tasks_active_on_insert AFTER INSERT ON dispatch_tasks
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_sync_active_tasks_insert();
CREATE TRIGGER dispatch_tasks_active_on_delete AFTER DELETE ON dispatch_tasks
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_sync_active_tasks_delete();

-- A new agent row starts from the tasks it already holds (e.g. re-registered after a purge).
CREATE FUNCTION dispatch_agents_count_existing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.active_tasks := (SELECT count(*) FROM dispatch_tasks
                        WHERE assignee = NEW.name AND status IN ('assigned', 'running'));
  RETURN NEW;
END $$;
CREATE TRIGGER dispatch_agents_count_on_insert BEFORE INSERT ON dispatch_agents
  FOR EACH ROW EXECUTE FUNCTION dispatch_agents_count_existing();

-- Timing rules, in one place so every replica (and a DBA) computes them the same way.
CREATE FUNCTION dispatch_retry_delay(retry_count integer, base_ms integer, cap_ms integer) RETURNS interval
LANGUAGE sql VOLATILE AS $$
  -- Exponential backoff with equal jitter: half the delay fixed, half random, so a burst of
  -- failures does not come back as a burst.
  SELECT make_interval(secs => least(cap_ms::float8, base_ms::float8 * power(2, retry_count)) * (0.5 + random() * 0.5) / 1000.0)
$$;
COMMENT ON FUNCTION dispatch_retry_delay(integer, integer, integer) IS 'Backoff before retry number retry_count+1: min(cap, base * 2^retry_count), with 50% jitter.';

CREATE FUNCTION dispatch_attempt_deadline(started_at timestamptz, assigned_at timestamptz, last_progress_at timestamptz,
                                          timeout_ms integer, heartbeat_timeout_ms integer) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
  -- The sooner of the execution deadline (from the start, else the assignment) and, when the task
  -- asks for heartbeats, the last sign of life plus the heartbeat timeout. least() skips nulls.
  SELECT least(coalesce(started_at, assigned_at) + make_interval(secs => timeout_ms / 1000.0),
               last_progress_at + make_interval(secs => heartbeat_timeout_ms / 1000.0))
$$;
COMMENT ON FUNCTION dispatch_attempt_deadline(timestamptz, timestamptz, timestamptz, integer, integer) IS 'When the current attempt of a task times out.';

-- Each active attempt has one graphile-worker job, key "timeout:<task id>", due at its deadline.
-- These two functions are the only code that knows how those jobs are stored.
CREATE FUNCTION dispatch_schedule_timeouts(task_ids uuid[], attempts integer[], run_ats timestamptz[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  missing graphile_worker.job_spec[];
BEGIN
  IF task_ids IS NULL OR cardinality(task_ids) = 0 THEN
    RETURN 0;
  END IF;
  -- Move jobs that exist with a plain UPDATE: graphile_worker.add_jobs would NOTIFY every worker on
  -- every heartbeat, and NOTIFY serialises commits. Workers find future jobs by polling anyway.
  WITH wanted AS (
    SELECT * FROM unnest(task_ids, attempts, run_ats) AS w(task_id, attempt, run_at)
  ), moved AS (
    UPDATE graphile_worker._private_jobs j
       SET run_at = w.run_at,
           payload = json_build_object('task_id', w.task_id, 'attempt', w.attempt),
           updated_at = now()
      FROM wanted w
     WHERE j.key = 'timeout:' || w.task_id::text AND j.locked_at IS NULL
    RETURNING w.task_id
  )
  SELECT array_agg(ROW('timeouts:check', json_build_object('task_id', w.task_id, 'attempt', w.attempt), NULL,
                       w.run_at, 10, 'timeout:' || w.task_id::text, 0, NULL)::graphile_worker.job_spec)
    INTO missing
    FROM wanted w
   WHERE w.task_id NOT IN (SELECT task_id FROM moved);
  IF missing IS NOT NULL THEN
    PERFORM graphile_worker.add_jobs(missing);
  END IF;
  RETURN cardinality(task_ids);
END $$;
COMMENT ON FUNCTION dispatch_schedule_timeouts(uuid[], integer[], timestamptz[]) IS 'Creates or moves the timeout job of each given task to its deadline; returns how many.';

CREATE FUNCTION dispatch_unschedule_timeout(timed_task uuid) RETURNS integer
LANGUAGE sql VOLATILE AS $$
  -- A job already running (locked) is left alone: it re-checks the attempt and does nothing.
  -- (The parameter is not called task_id: graphile's jobs table has a column of that name.)
  WITH removed AS (
    DELETE FROM graphile_worker._private_jobs WHERE key = 'timeout:' || timed_task::text AND locked_at IS NULL RETURNING 1
  )
  SELECT count(*)::integer FROM removed;
$$;
COMMENT ON FUNCTION dispatch_unschedule_timeout(uuid) IS 'Removes the timeout job of a task that finished or left its agent; returns how many jobs it removed.';

CREATE VIEW dispatch_queue_depth AS
  SELECT scope, status, count(*) AS tasks, min(created_at) AS oldest_created_at
    FROM dispatch_tasks
   WHERE status IN ('pending', 'assigned', 'running')
   GROUP BY scope, status;
COMMENT ON VIEW dispatch_queue_depth IS 'Open work by scope and status, with the age of the oldest task.';

CREATE VIEW dispatch_overdue_tasks AS
  SELECT id, scope, status, assignee, attempt, deadline_at, now() - deadline_at AS overdue_by
    FROM dispatch_tasks
   WHERE status IN ('assigned', 'running') AND deadline_at < now();
COMMENT ON VIEW dispatch_overdue_tasks IS 'Assigned or running tasks past their deadline that no timeout has handled yet (should stay empty).';

CREATE VIEW dispatch_agent_load AS
  SELECT name, status, drained, active_tasks, max_concurrent, capabilities, last_seen_at, last_assigned_at
    FROM dispatch_agents;
COMMENT ON VIEW dispatch_agent_load IS 'Each agent with its live load; max_concurrent null means the configured default.';
`,
    )
    .execute(db);
}
