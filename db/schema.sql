--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: public; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA public;

--
-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA public IS 'standard public schema';

--
-- Name: dispatch_add_parent_reader(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_add_parent_reader() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO dispatch_task_readers (task_id, reader, reason, task_created_at)
  SELECT NEW.id, p.requester, 'parent_requester', NEW.created_at
    FROM dispatch_tasks p
   WHERE p.id = NEW.parent_id AND p.requester <> NEW.requester
  ON CONFLICT (task_id, reader) DO NOTHING;
  RETURN NULL;
END $$;

--
-- Name: FUNCTION dispatch_add_parent_reader(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_add_parent_reader() IS 'Lets the requester of a task''s parent read the task (a subtask made by another agent).';

--
-- Name: dispatch_agent_live_load(integer, bigint, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_agent_live_load(active_tasks integer, released_folded bigint, released bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT active_tasks - greatest(0, coalesce(released, 0) - released_folded)::integer
$$;

--
-- Name: FUNCTION dispatch_agent_live_load(active_tasks integer, released_folded bigint, released bigint); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_agent_live_load(active_tasks integer, released_folded bigint, released bigint) IS 'Tasks assigned or running on an agent now, from its dispatch_agents row (active_tasks, released_folded) and its dispatch_agent_releases.released (null when it has no row yet): active_tasks less the releases not yet folded into it (migration 0022).';

--
-- Name: dispatch_agents_count_existing(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_agents_count_existing() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM dispatch_agents WHERE name = NEW.name) THEN
    RETURN NEW;
  END IF;
  NEW.active_tasks := (SELECT count(*) FROM dispatch_tasks
                        WHERE assignee = NEW.name AND status IN ('assigned', 'running'));
  NEW.released_folded := coalesce((SELECT released FROM dispatch_agent_releases WHERE agent = NEW.name), 0);
  RETURN NEW;
END $$;

--
-- Name: FUNCTION dispatch_agents_count_existing(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_agents_count_existing() IS 'BEFORE INSERT on dispatch_agents: a new agent row starts from the tasks its name already holds and from its name''s release count, which outlives the row. When the row exists (rows are never deleted) the INSERT is an upsert''s conflict, a registration or a heartbeat, and nothing is counted (migration 0031).';

--
-- Name: dispatch_agents_return_tasks_on_stop(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_agents_return_tasks_on_stop() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
  budget integer := coalesce(nullif(current_setting('dispatch.reassign_budget', true), '')::integer, 3);
BEGIN
  WITH t AS (
    UPDATE dispatch_tasks d
       SET status = CASE WHEN d.reassign_count + 1 >= budget THEN 'failed' ELSE 'pending' END,
           reassign_count = d.reassign_count + 1,
           completed_at = CASE WHEN d.reassign_count + 1 >= budget THEN now() END,
           error = CASE WHEN d.reassign_count + 1 >= budget
                        THEN format('reassignment budget exhausted: %s agents stopped while holding this task (last: %s)',
                                    d.reassign_count + 1, NEW.name)
                        ELSE d.error END,
           avoid_agent = NEW.name,
           deadline_at = NULL,
           not_before = NULL
     WHERE d.assignee = NEW.name AND d.status IN ('assigned', 'running')
    RETURNING d.id, d.status, d.attempt, d.reassign_count, d.error
  )
  INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
  SELECT id, CASE WHEN status = 'pending' THEN 'reassigned' ELSE 'failed' END, NEW.name, attempt,
         CASE WHEN status = 'pending'
              THEN jsonb_build_object('task_id', id, 'from', NEW.name, 'reason', 'agent stopped', 'reassign_count', reassign_count)
              ELSE jsonb_build_object('task_id', id, 'error', error) END
    FROM t;
  RETURN NULL;
END $$;

--
-- Name: FUNCTION dispatch_agents_return_tasks_on_stop(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_agents_return_tasks_on_stop() IS 'When an agent becomes stopped, its assigned and running tasks go back to pending (event reassigned), or fail once the reassignment budget is spent.';

--
-- Name: dispatch_agents_wake(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_agents_wake() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM dispatch_tasks WHERE status = 'pending' AND scope = ANY (NEW.capabilities)) THEN
    PERFORM dispatch_request_assignment();
  END IF;
  RETURN NULL;
END $$;

--
-- Name: dispatch_apply_assignments(jsonb, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_apply_assignments(decisions jsonb, notice_within_ms integer) RETURNS TABLE(id uuid, assignee text, attempt integer, scope text, traceparent text, created_at timestamp with time zone, assigned_at timestamp with time zone, due_notices bigint)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
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

--
-- Name: FUNCTION dispatch_apply_assignments(decisions jsonb, notice_within_ms integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_apply_assignments(decisions jsonb, notice_within_ms integer) IS 'An assignment batch''s write, sent with its COMMIT: decisions is a JSON array of {id, agent, placement}; each task still pending gets its new attempt, assignee and deadline, an assigned event carrying the placement, and its agent''s last_assigned_at (its releases folded into active_tasks); a deadline sooner than notice_within_ms is announced to the due timer. Returns the tasks assigned. PL/pgSQL so that a session plans it once (migration 0026), with sequential scans off so that a plan made while the tables were small still finds rows by key (migration 0027).';

--
-- Name: dispatch_apply_load_changes(text[], integer[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_apply_load_changes(agents text[], changes integer[]) RETURNS void
    LANGUAGE plpgsql
    SET enable_seqscan TO 'off'
    AS $$
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

--
-- Name: FUNCTION dispatch_apply_load_changes(agents text[], changes integer[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_apply_load_changes(agents text[], changes integer[]) IS 'Applies net changes in active tasks per agent (parallel arrays: agent, change): a rise to dispatch_agents.active_tasks, a fall to dispatch_agent_releases (migration 0022), waking the assigners when a freed agent has work waiting. Sequential scans off: it changes a few agents, found by name (migration 0027).';

--
-- Name: dispatch_attempt_deadline(timestamp with time zone, timestamp with time zone, timestamp with time zone, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_attempt_deadline(started_at timestamp with time zone, assigned_at timestamp with time zone, last_progress_at timestamp with time zone, timeout_ms integer, heartbeat_timeout_ms integer) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE
    AS $$
  -- The sooner of the execution deadline (from the start, else the assignment) and, when the task
  -- asks for heartbeats, the last sign of life plus the heartbeat timeout. least() skips nulls.
  SELECT least(coalesce(started_at, assigned_at) + make_interval(secs => timeout_ms / 1000.0),
               last_progress_at + make_interval(secs => heartbeat_timeout_ms / 1000.0))
$$;

--
-- Name: FUNCTION dispatch_attempt_deadline(started_at timestamp with time zone, assigned_at timestamp with time zone, last_progress_at timestamp with time zone, timeout_ms integer, heartbeat_timeout_ms integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_attempt_deadline(started_at timestamp with time zone, assigned_at timestamp with time zone, last_progress_at timestamp with time zone, timeout_ms integer, heartbeat_timeout_ms integer) IS 'When the current attempt of a task times out.';

--
-- Name: dispatch_claim_pending_tasks(text[], integer, integer, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_claim_pending_tasks(scopes text[], claim_limit integer, held_ahead integer, lock_controls boolean) RETURNS TABLE(id uuid, scope text, priority smallint, avoid_agent text, ready_at timestamp with time zone, rank timestamp with time zone, controls json)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_sort TO 'off'
    SET enable_bitmapscan TO 'off'
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH controlled AS MATERIALIZED (
    SELECT c.scope, c.paused, c.max_running, c.max_starts_per_minute, c.changed_at, c.changed_by
      FROM dispatch_scopes c
     WHERE lock_controls AND c.scope = ANY (scopes)
       AND (c.paused OR c.max_running IS NOT NULL OR c.max_starts_per_minute IS NOT NULL)
     ORDER BY c.scope
       FOR UPDATE
  ), candidates AS (
    -- Each scope walked on its own index, in claim order; the earliest of all of them are the
    -- candidates: the batch, 64 more for rows at the head of the queue another transaction holds,
    -- and those the batches side by side with this one may hold.
    SELECT x.id
      FROM unnest(ARRAY(SELECT s FROM unnest(scopes) AS s WHERE s NOT IN (SELECT c.scope FROM controlled c))) AS s(scope)
      CROSS JOIN LATERAL (
        SELECT t.id, t.rank FROM dispatch_tasks t
         WHERE t.status = 'pending' AND t.scope = s.scope
           AND (t.not_before IS NULL OR t.not_before <= now())
           AND (t.start_by IS NULL OR t.start_by > now())
         ORDER BY t.rank, t.id
         LIMIT claim_limit + 64 + held_ahead
      ) x
     ORDER BY x.rank, x.id
     LIMIT claim_limit + 64 + held_ahead
  ), claimed AS (
    -- Locked by primary key, passing over rows another transaction holds; the status test is
    -- written so that no partial index on pending tasks matches it (see claimPendingTasks).
    SELECT t.id, t.scope, t.priority, t.avoid_agent, coalesce(t.run_at, t.created_at) AS ready_at, t.rank
      FROM dispatch_tasks t
     WHERE t.id = ANY (ARRAY(SELECT c.id FROM candidates c))
       AND coalesce(t.status, '') = 'pending'
       AND (t.not_before IS NULL OR t.not_before <= now())
       AND (t.start_by IS NULL OR t.start_by > now())
     ORDER BY t.rank, t.id
     LIMIT claim_limit
       FOR UPDATE OF t SKIP LOCKED
  )
  SELECT k.id, k.scope, k.priority, k.avoid_agent, k.ready_at, k.rank, ctl.controls
    FROM (SELECT coalesce(json_agg(c ORDER BY c.scope), '[]') AS controls FROM controlled c) ctl
    LEFT JOIN claimed k ON true
   ORDER BY k.rank, k.id;
END
$$;

--
-- Name: FUNCTION dispatch_claim_pending_tasks(scopes text[], claim_limit integer, held_ahead integer, lock_controls boolean); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_claim_pending_tasks(scopes text[], claim_limit integer, held_ahead integer, lock_controls boolean) IS 'An assignment batch''s claim: the next pending tasks of scopes, in rank order, at most claim_limit, locked (SKIP LOCKED). With lock_controls, first locks the rows of the controlled scopes among scopes (returned as JSON in controls on every row; one row of NULL task columns when nothing was claimed) and claims only the others. PL/pgSQL so that a session plans it once (migration 0029).';

--
-- Name: dispatch_uuid_v7(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_uuid_v7() RETURNS uuid
    LANGUAGE sql PARALLEL SAFE
    AS $$
  -- A random UUID with its first 48 bits replaced by Unix time in milliseconds, and its version
  -- nibble turned from 4 (0100) into 7 (0111) by setting bits 52 and 53.
  SELECT encode(
           set_bit(set_bit(
             overlay(uuid_send(gen_random_uuid())
                     PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                     FROM 1 FOR 6),
             52, 1), 53, 1),
           'hex')::uuid
$$;

--
-- Name: FUNCTION dispatch_uuid_v7(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_uuid_v7() IS 'A UUID version 7: 48 bits of Unix milliseconds, then random bits. New ids sort by creation time, which keeps index inserts on recent pages.';

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: dispatch_tasks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_tasks (
    id uuid DEFAULT public.dispatch_uuid_v7() NOT NULL,
    requester text NOT NULL,
    title text NOT NULL,
    description text,
    scope text NOT NULL,
    priority smallint DEFAULT 3 NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    assignee text,
    attempt integer DEFAULT 0 NOT NULL,
    result jsonb,
    error text,
    context jsonb,
    timeout_ms integer DEFAULT 300000 NOT NULL,
    heartbeat_timeout_ms integer,
    start_timeout_ms integer,
    max_retries integer DEFAULT 1 NOT NULL,
    retry_count integer DEFAULT 0 NOT NULL,
    reassign_count integer DEFAULT 0 NOT NULL,
    parent_id uuid,
    idempotency_key text,
    not_before timestamp with time zone,
    avoid_agent text,
    deadline_at timestamp with time zone,
    last_progress_at timestamp with time zone,
    unmatched_at timestamp with time zone,
    start_alarm_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    assigned_at timestamp with time zone,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    run_at timestamp with time zone,
    start_by timestamp with time zone,
    timeout_reason text,
    rank timestamp with time zone,
    waiting_on integer DEFAULT 0 NOT NULL,
    on_dependency_failure text DEFAULT 'cancel'::text NOT NULL,
    traceparent text,
    CONSTRAINT dispatch_tasks_active_has_assignee CHECK (((status <> ALL (ARRAY['assigned'::text, 'running'::text])) OR ((assignee IS NOT NULL) AND (assigned_at IS NOT NULL)))),
    CONSTRAINT dispatch_tasks_attempt_check CHECK ((attempt >= 0)),
    CONSTRAINT dispatch_tasks_heartbeat_timeout_ms_check CHECK ((heartbeat_timeout_ms > 0)),
    CONSTRAINT dispatch_tasks_idempotency_key_check CHECK (((length(idempotency_key) >= 1) AND (length(idempotency_key) <= 200))),
    CONSTRAINT dispatch_tasks_max_retries_check CHECK ((max_retries >= 0)),
    CONSTRAINT dispatch_tasks_on_dependency_failure_check CHECK ((on_dependency_failure = ANY (ARRAY['cancel'::text, 'run'::text]))),
    CONSTRAINT dispatch_tasks_priority_check CHECK (((priority >= 1) AND (priority <= 5))),
    CONSTRAINT dispatch_tasks_reassign_count_check CHECK ((reassign_count >= 0)),
    CONSTRAINT dispatch_tasks_requester_check CHECK (((length(requester) >= 1) AND (length(requester) <= 200))),
    CONSTRAINT dispatch_tasks_retries_within_budget CHECK ((retry_count <= max_retries)),
    CONSTRAINT dispatch_tasks_retry_count_check CHECK ((retry_count >= 0)),
    CONSTRAINT dispatch_tasks_scope_check CHECK ((((length(scope) >= 1) AND (length(scope) <= 200)) AND (scope = lower(scope)))),
    CONSTRAINT dispatch_tasks_start_timeout_ms_check CHECK ((start_timeout_ms > 0)),
    CONSTRAINT dispatch_tasks_status_check CHECK ((status = ANY (ARRAY['waiting'::text, 'pending'::text, 'assigned'::text, 'running'::text, 'completed'::text, 'failed'::text, 'cancelled'::text, 'timeout'::text]))),
    CONSTRAINT dispatch_tasks_terminal_is_stamped CHECK (((status <> ALL (ARRAY['completed'::text, 'failed'::text, 'cancelled'::text, 'timeout'::text])) OR (completed_at IS NOT NULL))),
    CONSTRAINT dispatch_tasks_timeout_ms_check CHECK ((timeout_ms > 0)),
    CONSTRAINT dispatch_tasks_timeout_reason_check CHECK ((timeout_reason = ANY (ARRAY['expired'::text, 'execution'::text, 'heartbeat'::text]))),
    CONSTRAINT dispatch_tasks_title_check CHECK (((length(title) >= 1) AND (length(title) <= 500))),
    CONSTRAINT dispatch_tasks_traceparent_check CHECK ((traceparent ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'::text)),
    CONSTRAINT dispatch_tasks_waiting_on_check CHECK ((waiting_on >= 0)),
    CONSTRAINT dispatch_tasks_waiting_on_dependencies CHECK (((status <> 'waiting'::text) OR (waiting_on > 0)))
)
WITH (fillfactor='80', autovacuum_vacuum_scale_factor='0.01', autovacuum_vacuum_threshold='1000', autovacuum_vacuum_insert_scale_factor='0.05', autovacuum_analyze_scale_factor='0.02', autovacuum_vacuum_cost_delay='0');

--
-- Name: TABLE dispatch_tasks; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_tasks IS 'The work queue: one row per task, from request to a terminal status. Written only through conditional updates that check status, assignee and attempt.';

--
-- Name: COLUMN dispatch_tasks.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.id IS 'Server-generated task id.';

--
-- Name: COLUMN dispatch_tasks.requester; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.requester IS 'X-Agent-ID of the agent (or NATS requester) that created the task.';

--
-- Name: COLUMN dispatch_tasks.title; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.title IS 'Short human-readable summary; required.';

--
-- Name: COLUMN dispatch_tasks.description; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.description IS 'Optional longer description of the work.';

--
-- Name: COLUMN dispatch_tasks.scope; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.scope IS 'Capability tag the task needs, stored lower-cased; an agent qualifies when its capabilities contain it.';

--
-- Name: COLUMN dispatch_tasks.priority; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.priority IS '1 (most urgent) to 5; pending work is taken in rank order: priority raised one level per assignment.aging_ms waited, then oldest first.';

--
-- Name: COLUMN dispatch_tasks.status; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.status IS 'waiting (for its dependencies), pending (for an agent), assigned, running (terminal: completed, failed, cancelled, timeout).';

--
-- Name: COLUMN dispatch_tasks.assignee; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.assignee IS 'Agent that holds (or last held) the task.';

--
-- Name: COLUMN dispatch_tasks.attempt; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.attempt IS 'Lease number: incremented at every assignment. Calls from an agent carrying an older attempt are rejected.';

--
-- Name: COLUMN dispatch_tasks.result; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.result IS 'JSON result reported on completion.';

--
-- Name: COLUMN dispatch_tasks.error; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.error IS 'Reason given on failure, timeout or reassignment-budget exhaustion.';

--
-- Name: COLUMN dispatch_tasks.context; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.context IS 'Free-form JSON input for the worker.';

--
-- Name: COLUMN dispatch_tasks.timeout_ms; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.timeout_ms IS 'Execution timeout, counted from started_at, or from assigned_at until the task starts.';

--
-- Name: COLUMN dispatch_tasks.heartbeat_timeout_ms; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.heartbeat_timeout_ms IS 'Optional: longest silence allowed between progress reports before the attempt is timed out.';

--
-- Name: COLUMN dispatch_tasks.start_timeout_ms; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.start_timeout_ms IS 'Optional: how long the task may wait pending before an operator alarm is raised (it is not failed).';

--
-- Name: COLUMN dispatch_tasks.max_retries; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.max_retries IS 'How many times a failed or timed-out task is tried again.';

--
-- Name: COLUMN dispatch_tasks.retry_count; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.retry_count IS 'Retries spent so far (never more than max_retries).';

--
-- Name: COLUMN dispatch_tasks.reassign_count; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.reassign_count IS 'Times the task went back to pending because its agent stopped; limited by lifecycle.reassign_budget.';

--
-- Name: COLUMN dispatch_tasks.parent_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.parent_id IS 'Optional task this one was spawned from.';

--
-- Name: COLUMN dispatch_tasks.idempotency_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.idempotency_key IS 'Idempotency-Key header of the create request; unique per requester.';

--
-- Name: COLUMN dispatch_tasks.not_before; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.not_before IS 'A pending task is not assigned before this instant: run_at of a delayed task, or the end of a retry backoff.';

--
-- Name: COLUMN dispatch_tasks.avoid_agent; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.avoid_agent IS 'Agent that last failed or timed out this task; another capable agent is preferred.';

--
-- Name: COLUMN dispatch_tasks.deadline_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.deadline_at IS 'When the current attempt times out (execution or heartbeat, whichever is sooner); null unless assigned or running.';

--
-- Name: COLUMN dispatch_tasks.last_progress_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.last_progress_at IS 'Last progress report of the current attempt.';

--
-- Name: COLUMN dispatch_tasks.unmatched_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.unmatched_at IS 'Set once when no capable agent existed for this pending task; cleared when it is assigned.';

--
-- Name: COLUMN dispatch_tasks.start_alarm_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.start_alarm_at IS 'Set once when the task waited pending longer than its start timeout.';

--
-- Name: COLUMN dispatch_tasks.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.created_at IS 'When the task was requested.';

--
-- Name: COLUMN dispatch_tasks.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.updated_at IS 'Last change to the row (maintained by trigger).';

--
-- Name: COLUMN dispatch_tasks.assigned_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.assigned_at IS 'When the current attempt was assigned.';

--
-- Name: COLUMN dispatch_tasks.started_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.started_at IS 'First progress report of the current attempt.';

--
-- Name: COLUMN dispatch_tasks.completed_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.completed_at IS 'When the task reached a terminal status.';

--
-- Name: COLUMN dispatch_tasks.run_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.run_at IS 'Requested earliest assignment (run_at, or creation + delay_ms); null when the task was not delayed. Copied into not_before at creation, which is what the claim reads.';

--
-- Name: COLUMN dispatch_tasks.start_by; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.start_by IS 'Expiry: a task still pending (not assigned) at this instant ends timeout with timeout_reason expired. Null: never expires.';

--
-- Name: COLUMN dispatch_tasks.timeout_reason; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.timeout_reason IS 'Why a task ended timeout: expired (not assigned by start_by), execution (timeout_ms) or heartbeat (heartbeat_timeout_ms); null for other statuses.';

--
-- Name: COLUMN dispatch_tasks.rank; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.rank IS 'Claim order (aging): ready time (run_at, else created_at) + (priority - 1) x assignment.aging_ms. Pending tasks are claimed in rank order; see dispatch_task_rank().';

--
-- Name: COLUMN dispatch_tasks.waiting_on; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.waiting_on IS 'Dependencies (dispatch_task_dependencies) not yet ended; the task is waiting while this is above 0. Decremented by dispatch_settle_dependents().';

--
-- Name: COLUMN dispatch_tasks.on_dependency_failure; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.on_dependency_failure IS 'cancel: the task is cancelled when a dependency fails, is cancelled or times out; run: it runs anyway once every dependency has ended.';

--
-- Name: COLUMN dispatch_tasks.traceparent; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.traceparent IS 'W3C trace context (traceparent header) sent with the create request: handed to the assignee in the task JSON and on every NATS event of the task; Dispatch''s own spans (when OTLP export is on) are its children. NULL: sent without one.';

--
-- Name: dispatch_complete_tasks(uuid[], text[], integer[], jsonb[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_complete_tasks(task_ids uuid[], agents text[], attempts integer[], results jsonb[]) RETURNS TABLE(input bigint, task public.dispatch_tasks)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    AS $$
BEGIN
  RETURN QUERY
  WITH i AS (
    SELECT * FROM unnest(task_ids, agents, attempts, results) WITH ORDINALITY AS i(id, agent, attempt, result, n)
  ), t AS (
    UPDATE dispatch_tasks d
       SET status = 'completed', result = i.result, completed_at = now(), deadline_at = NULL
      FROM i
     WHERE d.id = ANY (task_ids) AND d.id = i.id
       AND coalesce(d.status, '') IN ('assigned', 'running') AND d.assignee = i.agent
       AND (i.attempt IS NULL OR d.attempt = i.attempt)
    RETURNING i.n, d
  ), e AS (
    INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
    SELECT (t.d).id, 'completed', (t.d).assignee, (t.d).attempt, jsonb_build_object('task_id', (t.d).id, 'result', (t.d).result)
      FROM t
  )
  SELECT t.n, t.d FROM t;
END
$$;

--
-- Name: FUNCTION dispatch_complete_tasks(task_ids uuid[], agents text[], attempts integer[], results jsonb[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_complete_tasks(task_ids uuid[], agents text[], attempts integer[], results jsonb[]) IS 'A completion batch: completes each task still held by its agent (and attempt, when not NULL) with its result, adds its completed event, and returns it with its position in the input (1-based). PL/pgSQL so that a session plans it once (migration 0029).';

--
-- Name: dispatch_feed_horizon(pg_snapshot); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_feed_horizon(snap pg_snapshot) RETURNS xid8
    LANGUAGE sql STABLE
    AS $$
  SELECT coalesce(min(x), pg_snapshot_xmax(snap)) FROM dispatch_feed_running(snap) AS x
$$;

--
-- Name: FUNCTION dispatch_feed_horizon(snap pg_snapshot); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_feed_horizon(snap pg_snapshot) IS 'Every transaction of this database below this id had ended when snap was taken (pass the calling statement''s, pg_current_snapshot()): the assignment feed sends the events written below it, in (tx, id) order, and nothing can commit behind them later. Transactions of other databases do not hold it back, as they do pg_snapshot_xmin(snap) (migration 0024).';

--
-- Name: dispatch_feed_running(pg_snapshot); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_feed_running(snap pg_snapshot) RETURNS SETOF xid8
    LANGUAGE sql STABLE
    AS $$
  SELECT x FROM pg_snapshot_xip(snap) AS x
   WHERE xid(x) NOT IN (
     -- pg_stat_activity's own source, without the view's joins (a fifth of its cost per call).
     SELECT a.backend_xid FROM pg_stat_get_activity(NULL) a
      WHERE a.backend_xid IS NOT NULL
        AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))
$$;

--
-- Name: FUNCTION dispatch_feed_running(snap pg_snapshot); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_feed_running(snap pg_snapshot) IS 'The transactions running in snap that may write this database: all of pg_snapshot_xip(snap) but those pg_stat_activity shows in sessions connected to other databases (a transaction id the reading role may not see counts as this database''s; grant pg_read_all_stats). What the assignment feed waits for (migration 0024).';

--
-- Name: dispatch_feed_since(xid8, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_feed_since(from_tx xid8, agents text[]) RETURNS TABLE(feed_horizon xid8, feed_id bigint, feed_tx xid8, feed_agent text, feed_kind text, feed_task_id uuid, feed_attempt integer, feed_task public.dispatch_tasks)
    LANGUAGE plpgsql
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
BEGIN
  RETURN QUERY
  WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap),
  recent AS MATERIALIZED (
    SELECT * FROM dispatch_assignment_feed WHERE tx >= from_tx
  ),
  f AS MATERIALIZED (
    SELECT * FROM recent WHERE recent.agent IN (SELECT unnest(agents))
  ),
  h AS MATERIALIZED (
    -- Only an event at or past the snapshot's xmin makes it worth reading which running
    -- transactions are of other databases (migration 0024).
    SELECT CASE WHEN EXISTS (SELECT 1 FROM f WHERE f.tx >= pg_snapshot_xmin(s.snap)) THEN dispatch_feed_horizon(s.snap)
                ELSE pg_snapshot_xmin(s.snap) END AS below
      FROM s
  )
  SELECT h.below, f.id, f.tx, f.agent, f.kind, f.task_id, f.attempt, t.x
    FROM h LEFT JOIN f ON true
    LEFT JOIN LATERAL (SELECT x FROM dispatch_tasks x WHERE x.id = f.task_id OFFSET 0) t ON true
   ORDER BY f.tx, f.id;
END $$;

--
-- Name: FUNCTION dispatch_feed_since(from_tx xid8, agents text[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_feed_since(from_tx xid8, agents text[]) IS 'The assignment streams'' live read: the feed events of these agents from transaction from_tx on, in (tx, id) order, each with its task (NULL once deleted), and the horizon below which every transaction of this database has ended, all from one snapshot (one row with NULL events when there are none). Reads every agent''s recent events by transaction and keeps these agents'': its cost follows the events since from_tx, not the agents or the history. Plan generic, made once per session; sequential scans and JIT off (migration 0032).';

--
-- Name: dispatch_fold_agent_releases(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_fold_agent_releases() RETURNS integer
    LANGUAGE sql
    AS $$
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

--
-- Name: FUNCTION dispatch_fold_agent_releases(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_fold_agent_releases() IS 'Subtracts each agent''s releases counted since its last fold from active_tasks (migration 0022); rows locked by an assignment batch are passed over. Returns how many agents it folded.';

--
-- Name: dispatch_fold_scope_counters(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_fold_scope_counters() RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION dispatch_fold_scope_counters(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_fold_scope_counters() IS 'Folds the committed rows of each key of dispatch_scope_counts and dispatch_scope_observations into one, under advisory lock 72142505 (one replica at a time); returns how many count keys remain. Run every second by src/tasks/scope-counter-folding.ts.';

--
-- Name: dispatch_latency_bucket(double precision); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_latency_bucket(seconds double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT (dispatch_latency_buckets())[width_bucket(seconds, dispatch_latency_buckets())
                                      + CASE WHEN seconds = ANY (dispatch_latency_buckets()) THEN 0 ELSE 1 END]
$$;

--
-- Name: FUNCTION dispatch_latency_bucket(seconds double precision); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_latency_bucket(seconds double precision) IS 'The smallest bucket bound an observation of this many seconds falls under.';

--
-- Name: dispatch_latency_buckets(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_latency_buckets() RETURNS double precision[]
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT ARRAY[0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 'Infinity']::float8[]
$$;

--
-- Name: FUNCTION dispatch_latency_buckets(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_latency_buckets() IS 'Histogram bucket upper bounds in seconds for dispatch_scope_observations, from 10 ms to an hour; the metrics scrape reads them from here.';

--
-- Name: dispatch_lock_agents_and_claim(integer, boolean, integer, integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_lock_agents_and_claim(default_limit integer, take_active boolean, share_index integer, share_of integer, claim_limit integer, held_ahead integer) RETURNS TABLE(took_active boolean, locked_agents json, other_agents json, claimed json, controls json)
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

--
-- Name: FUNCTION dispatch_lock_agents_and_claim(default_limit integer, take_active boolean, share_index integer, share_of integer, claim_limit integer, held_ahead integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_lock_agents_and_claim(default_limit integer, take_active boolean, share_index integer, share_of integer, claim_limit integer, held_ahead integer) IS 'An assignment batch''s first statement, run right after its BEGIN (migration 0030): with take_active, tries the assigner''s ACTIVE lock and does nothing more without it; with no task pending, returns no agents; otherwise dispatch_lock_free_agents, then, when some agent was locked, the claim of the tasks they can serve (dispatch_claim_pending_tasks with lock_controls, at most claim_limit, held_ahead walked past), in a snapshot of its own. Claimed tasks come as JSON arrays [id, scope, priority, avoid_agent, ready_at, rank] in claim order; controls lists the controlled scopes the claim locked and left out.';

--
-- Name: dispatch_lock_agents_for_pending_work(integer, boolean, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_lock_agents_for_pending_work(default_limit integer, take_active boolean, share_index integer, share_of integer) RETURNS TABLE(took_active boolean, locked_agents json, other_agents json)
    LANGUAGE plpgsql
    AS $$
DECLARE
  -- 72142501: the assigner's ACTIVE session lock (migration 0002).
  is_active boolean := CASE WHEN take_active THEN pg_try_advisory_lock(72142501) ELSE true END;
BEGIN
  IF NOT is_active OR NOT dispatch_pending_tasks_exist() THEN
    -- Another assigner is active, or there is nothing to place: no agent is locked or read.
    RETURN QUERY SELECT is_active, '[]'::json, '[]'::json;
  ELSE
    -- ACTIVE is held (or was not asked for): the first statement as before, without asking again.
    RETURN QUERY SELECT * FROM dispatch_lock_assignable_agents(default_limit, false, share_index, share_of);
  END IF;
END $$;

--
-- Name: FUNCTION dispatch_lock_agents_for_pending_work(default_limit integer, take_active boolean, share_index integer, share_of integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_lock_agents_for_pending_work(default_limit integer, take_active boolean, share_index integer, share_of integer) IS 'An assignment batch''s first statement, run right after its BEGIN (migration 0028): with take_active, tries the assigner''s ACTIVE lock and does nothing more without it; with no task pending, returns no agents and does nothing more; otherwise returns what dispatch_lock_assignable_agents returns (the scope-controls gate and the claim''s planner settings taken, the free agents locked, the others read).';

--
-- Name: dispatch_lock_assignable_agents(integer, boolean, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_lock_assignable_agents(default_limit integer, take_active boolean, share_index integer, share_of integer) RETURNS TABLE(took_active boolean, locked_agents json, other_agents json)
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

--
-- Name: FUNCTION dispatch_lock_assignable_agents(default_limit integer, take_active boolean, share_index integer, share_of integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_lock_assignable_agents(default_limit integer, take_active boolean, share_index integer, share_of integer) IS 'An assignment batch''s first statement before migration 0030: with take_active, tries the assigner''s ACTIVE lock (and does nothing more without it); then dispatch_lock_free_agents, without its servable_scopes. Kept for replicas of the previous version and for dispatch_lock_agents_for_pending_work.';

--
-- Name: dispatch_lock_free_agents(integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_lock_free_agents(default_limit integer, share_index integer, share_of integer) RETURNS TABLE(locked_agents json, other_agents json, servable_scopes text[])
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
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

--
-- Name: FUNCTION dispatch_lock_free_agents(default_limit integer, share_index integer, share_of integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_lock_free_agents(default_limit integer, share_index integer, share_of integer) IS 'Takes the scope-controls gate (shared) and planner settings for the transaction; locks the free agents in name order (only every share_of-th from the share_index-th when share_of is given), reads the others unlocked, and returns the locked agents'' capabilities (servable_scopes). The agents come back as JSON arrays [name, capabilities, status, drained, active_tasks, max_concurrent, last_assigned_at, avoid_until], max_concurrent defaulting to default_limit. PL/pgSQL so that a session plans it once (the body of dispatch_lock_assignable_agents, moved by migration 0030).';

--
-- Name: dispatch_notify_assignments(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_notify_assignments() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_events
              WHERE event IN ('assigned', 'cancelled', 'reassigned', 'wake_timeout', 'timeout_retry', 'timeout_exhausted')) THEN
    PERFORM pg_notify('dispatch_assignments', pg_current_xact_id()::text);
  END IF;
  RETURN NULL;
END $$;

--
-- Name: FUNCTION dispatch_notify_assignments(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_notify_assignments() IS 'NOTIFY dispatch_assignments with the writing transaction''s id as payload (the tx of its events) when a statement writes an event the assignment stream sends; one per transaction, however many rows. A replica that has read past that transaction drops it (migration 0033).';

--
-- Name: dispatch_notify_due(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_notify_due(due timestamp with time zone) RETURNS void
    LANGUAGE sql
    AS $$
  SELECT pg_notify('dispatch_due', floor(extract(epoch FROM due) * 1000)::bigint::text)
$$;

--
-- Name: FUNCTION dispatch_notify_due(due timestamp with time zone); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_notify_due(due timestamp with time zone) IS 'NOTIFY dispatch_due with a due time in epoch milliseconds: replicas armed later re-read the earliest due time (src/lifecycle/due-timer.ts).';

--
-- Name: dispatch_pending_tasks_exist(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_pending_tasks_exist() RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET enable_seqscan TO 'off'
    AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM dispatch_tasks WHERE status = 'pending');
END $$;

--
-- Name: FUNCTION dispatch_pending_tasks_exist(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_pending_tasks_exist() IS 'Whether any task is pending (due or not, servable or not), read through a partial index on pending tasks: the assignment batch''s first question (dispatch_lock_agents_for_pending_work). PL/pgSQL so that a session plans it once, with sequential scans off so that a plan made while dispatch_tasks was nearly empty does not read every finished task once it is large (migration 0028).';

--
-- Name: dispatch_queue_events_for_publication(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_queue_events_for_publication() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO dispatch_event_outbox (id) SELECT id FROM new_rows;
  RETURN NULL;
END $$;

--
-- Name: FUNCTION dispatch_queue_events_for_publication(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_queue_events_for_publication() IS 'Statement trigger: every new task event is owed to NATS, in the same transaction as the event.';

--
-- Name: dispatch_record_observations(text[], text[], text[], double precision[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_record_observations(scopes text[], kinds text[], outcomes text[], secs double precision[]) RETURNS integer
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO dispatch_scope_observations (scope, kind, outcome, le, observations, seconds)
  SELECT s, k, o, dispatch_latency_bucket(greatest(x, 0)), count(*), sum(greatest(x, 0))
    FROM unnest(scopes, kinds, outcomes, secs) AS u(s, k, o, x)
   GROUP BY 1, 2, 3, 4;
  RETURN cardinality(scopes);
END $$;

--
-- Name: FUNCTION dispatch_record_observations(scopes text[], kinds text[], outcomes text[], secs double precision[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_record_observations(scopes text[], kinds text[], outcomes text[], secs double precision[]) IS 'Appends observations (parallel arrays: scope, kind, outcome, seconds) to dispatch_scope_observations, one row per bucket touched; returns how many observations. PL/pgSQL so that its INSERT is planned once per session (migration 0020).';

--
-- Name: dispatch_remember_former_assignee(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_remember_former_assignee() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO dispatch_task_readers (task_id, reader, reason, task_created_at)
  VALUES (NEW.id, OLD.assignee, 'former_assignee', NEW.created_at)
  ON CONFLICT (task_id, reader) DO NOTHING;
  RETURN NULL;
END $$;

--
-- Name: FUNCTION dispatch_remember_former_assignee(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_remember_former_assignee() IS 'Keeps an agent that held an earlier attempt of a task able to read it once the task is assigned to another agent.';

--
-- Name: dispatch_request_assignment(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_request_assignment() RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(72142502);
  -- A probe, released at once: holding it would let one open transaction keep assigners out.
  IF pg_try_advisory_lock_shared(72142501) THEN
    PERFORM pg_advisory_unlock_shared(72142501);
    -- Delivered at commit; a transaction's identical notifications are folded into one.
    PERFORM pg_notify('dispatch_assign', '');
  END IF;
END $$;

--
-- Name: FUNCTION dispatch_request_assignment(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_request_assignment() IS 'Wakes the assigners (NOTIFY dispatch_assign at commit) unless one is already draining the queue (see migrations 0002 and 0019).';

--
-- Name: dispatch_request_assignment_at(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_request_assignment_at(due timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
  -- Backoff: one job per second of due time, however many tasks fall due in it.
  PERFORM graphile_worker.add_job('assignment:run', run_at := due,
                                  job_key := 'assignment:at:' || floor(extract(epoch FROM due))::bigint::text,
                                  job_key_mode := 'preserve_run_at', max_attempts := 3);
END $$;

--
-- Name: FUNCTION dispatch_request_assignment_at(due timestamp with time zone); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_request_assignment_at(due timestamp with time zone) IS 'Schedules an assignment pass for when a retry backoff ends.';

--
-- Name: dispatch_retry_delay(integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_retry_delay(retry_count integer, base_ms integer, cap_ms integer) RETURNS interval
    LANGUAGE sql
    AS $$
  -- Exponential backoff with equal jitter: half the delay fixed, half random, so a burst of
  -- failures does not come back as a burst.
  SELECT make_interval(secs => least(cap_ms::float8, base_ms::float8 * power(2, retry_count)) * (0.5 + random() * 0.5) / 1000.0)
$$;

--
-- Name: FUNCTION dispatch_retry_delay(retry_count integer, base_ms integer, cap_ms integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_retry_delay(retry_count integer, base_ms integer, cap_ms integer) IS 'Backoff before retry number retry_count+1: min(cap, base * 2^retry_count), with 50% jitter.';

--
-- Name: dispatch_schedule_timeouts(uuid[], integer[], timestamp with time zone[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_schedule_timeouts(task_ids uuid[], attempts integer[], run_ats timestamp with time zone[]) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT 0 $$;

--
-- Name: FUNCTION dispatch_schedule_timeouts(task_ids uuid[], attempts integer[], run_ats timestamp with time zone[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_schedule_timeouts(task_ids uuid[], attempts integer[], run_ats timestamp with time zone[]) IS 'Does nothing since migration 0023 (attempts time out from deadline_at, by the due timer); kept for replicas of the previous version during a rolling upgrade.';

--
-- Name: dispatch_scope_counts_on_delete(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_scope_counts_on_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  -- Retention deletes finished tasks only, so this is usually a no-op; a DBA's DELETE of open
  -- tasks must still leave the counts exact.
  INSERT INTO dispatch_scope_counts (scope, status, tasks)
  SELECT scope, status, -count(*) FROM old_rows
   WHERE status IN ('pending', 'assigned', 'running')
   GROUP BY scope, status;
  RETURN NULL;
END $$;

--
-- Name: FUNCTION dispatch_scope_counts_on_delete(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_scope_counts_on_delete() IS 'Statement trigger: removes deleted open tasks from dispatch_scope_counts.';

--
-- Name: dispatch_scope_counts_on_insert(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_scope_counts_on_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION dispatch_scope_counts_on_insert(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_scope_counts_on_insert() IS 'Statement trigger: adds new open tasks to dispatch_scope_counts, and tasks inserted already finished to the finished counters of dispatch_scope_observations.';

--
-- Name: dispatch_scope_counts_on_update(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_scope_counts_on_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION dispatch_scope_counts_on_update(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_scope_counts_on_update() IS 'Statement trigger: applies the net change of open tasks per scope and status to dispatch_scope_counts, and records finishes, assignments and ended attempts in dispatch_scope_observations.';

--
-- Name: dispatch_scope_counts_waiting(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_scope_counts_waiting() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION dispatch_scope_counts_waiting(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_scope_counts_waiting() IS 'Statement trigger: appends the net change of waiting tasks per scope to dispatch_scope_counts (the other open statuses are counted by dispatch_scope_counts_on_insert/update/delete).';

--
-- Name: dispatch_settle_dependents(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_settle_dependents() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION dispatch_settle_dependents(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_settle_dependents() IS 'Statement trigger: tasks that just ended (completed, failed, cancelled, timeout) and have dependents are passed to dispatch_settle_ended().';

--
-- Name: dispatch_settle_ended(uuid[], text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_settle_ended(ended_ids uuid[], ended_statuses text[]) RETURNS void
    LANGUAGE plpgsql
    SET enable_seqscan TO 'off'
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

--
-- Name: FUNCTION dispatch_settle_ended(ended_ids uuid[], ended_statuses text[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_settle_ended(ended_ids uuid[], ended_statuses text[]) IS 'Settles the dependents of tasks that ended (parallel arrays: id, terminal status): cancels those whose policy is cancel when a dependency did not complete (event cancelled, error naming it), then counts the ended dependencies off the others, making pending (event released) those with none left; repeats for the tasks it cancelled.';

--
-- Name: dispatch_stream_recipient(text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_stream_recipient(event text, agent_id text, payload jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN event = 'cancelled' THEN payload->>'assignee' ELSE agent_id END $$;

--
-- Name: FUNCTION dispatch_stream_recipient(event text, agent_id text, payload jsonb); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_stream_recipient(event text, agent_id text, payload jsonb) IS 'The agent an audit event gives work to or takes it from (the assignee in a cancel''s payload, else agent_id); used by dispatch_assignment_feed and its index.';

--
-- Name: dispatch_sync_active_tasks(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_sync_active_tasks() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION dispatch_sync_active_tasks(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_sync_active_tasks() IS 'Statement trigger: the net change in active tasks per agent, applied by dispatch_apply_load_changes.';

--
-- Name: dispatch_sync_active_tasks_delete(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_sync_active_tasks_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: dispatch_sync_active_tasks_insert(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_sync_active_tasks_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  UPDATE dispatch_agents a SET active_tasks = a.active_tasks + d.n
    FROM (SELECT assignee, count(*)::integer AS n FROM new_rows
           WHERE status IN ('assigned', 'running') AND assignee IS NOT NULL GROUP BY assignee) d
   WHERE a.name = d.assignee;
  RETURN NULL;
END $$;

--
-- Name: dispatch_task_rank(timestamp with time zone, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_task_rank(ready_at timestamp with time zone, priority integer) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    AS $$
  SELECT ready_at + (priority - 1) * CASE WHEN coalesce(nullif(current_setting('dispatch.aging_ms', true), '')::integer, 60000) > 0
                                          THEN make_interval(secs => coalesce(nullif(current_setting('dispatch.aging_ms', true), '')::integer, 60000) / 1000.0)
                                          ELSE interval '1000 years' END
$$;

--
-- Name: FUNCTION dispatch_task_rank(ready_at timestamp with time zone, priority integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_task_rank(ready_at timestamp with time zone, priority integer) IS 'Claim order of a task ready at ready_at: one priority level per dispatch.aging_ms (session setting, default 60000; 0: no aging, levels 1000 years apart).';

--
-- Name: dispatch_tasks_fill_rank(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_tasks_fill_rank() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  NEW.rank := dispatch_task_rank(coalesce(NEW.run_at, NEW.created_at), NEW.priority);
  RETURN NEW;
END $$;

--
-- Name: FUNCTION dispatch_tasks_fill_rank(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_tasks_fill_rank() IS 'Computes rank for a task inserted without one, or whose priority changed.';

--
-- Name: dispatch_tasks_wake_on_insert(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_tasks_wake_on_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: dispatch_tasks_wake_on_update(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_tasks_wake_on_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: dispatch_touch_updated_at(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

--
-- Name: FUNCTION dispatch_touch_updated_at(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_touch_updated_at() IS 'Keeps updated_at current on every row change.';

--
-- Name: dispatch_unschedule_timeout(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_unschedule_timeout(timed_task uuid) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT 0 $$;

--
-- Name: FUNCTION dispatch_unschedule_timeout(timed_task uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_unschedule_timeout(timed_task uuid) IS 'Does nothing since migration 0023 (attempts time out from deadline_at, by the due timer); kept for replicas of the previous version during a rolling upgrade.';

--
-- Name: dispatch_agent_releases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_agent_releases (
    agent text NOT NULL,
    released bigint DEFAULT 0 NOT NULL,
    CONSTRAINT dispatch_agent_releases_released_check CHECK ((released >= 0))
)
WITH (fillfactor='50');

--
-- Name: TABLE dispatch_agent_releases; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_agent_releases IS 'Tasks each agent has given up (completed, failed, retried, cancelled, timed out, moved), counted for ever: kept out of dispatch_agents so that finishing a task never waits for an assignment batch, which holds the free agents'' rows locked. Live loads: the view dispatch_agent_load (migration 0022).';

--
-- Name: COLUMN dispatch_agent_releases.agent; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agent_releases.agent IS 'Agent name (dispatch_agents.name; the row outlives a deleted agent, and a new row of the same name starts from its count).';

--
-- Name: COLUMN dispatch_agent_releases.released; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agent_releases.released IS 'Tasks that left this agent''s hands since the row was created; only ever grows.';

--
-- Name: dispatch_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_agents (
    name text NOT NULL,
    capabilities text[] DEFAULT '{}'::text[] NOT NULL,
    status text DEFAULT 'unknown'::text NOT NULL,
    source text DEFAULT 'standalone'::text NOT NULL,
    max_concurrent integer,
    active_tasks integer DEFAULT 0 NOT NULL,
    drained boolean DEFAULT false NOT NULL,
    drained_at timestamp with time zone,
    drained_by text,
    last_seen_at timestamp with time zone,
    last_assigned_at timestamp with time zone,
    wake_requested_at timestamp with time zone,
    avoid_until timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    released_folded bigint DEFAULT 0 NOT NULL,
    CONSTRAINT dispatch_agents_active_tasks_check CHECK ((active_tasks >= 0)),
    CONSTRAINT dispatch_agents_max_concurrent_check CHECK ((max_concurrent > 0)),
    CONSTRAINT dispatch_agents_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT dispatch_agents_source_check CHECK ((source = ANY (ARRAY['standalone'::text, 'warren'::text]))),
    CONSTRAINT dispatch_agents_status_check CHECK ((status = ANY (ARRAY['ready'::text, 'sleeping'::text, 'starting'::text, 'busy'::text, 'degraded'::text, 'stopped'::text, 'unknown'::text])))
)
WITH (fillfactor='50');

--
-- Name: TABLE dispatch_agents; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_agents IS 'Agent directory shared by every replica: capabilities, last known status, drain state and live load.';

--
-- Name: COLUMN dispatch_agents.name; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.name IS 'Agent id (the X-Agent-ID it calls with; the persona name in PromptForge and Warren).';

--
-- Name: COLUMN dispatch_agents.capabilities; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.capabilities IS 'Lower-cased capability tags; a task goes only to an agent whose tags contain its scope.';

--
-- Name: COLUMN dispatch_agents.status; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.status IS 'Last known status: ready, sleeping, starting, busy, degraded, stopped or unknown.';

--
-- Name: COLUMN dispatch_agents.source; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.source IS 'standalone: the agent registers itself over REST; warren: synced from Warren and PromptForge.';

--
-- Name: COLUMN dispatch_agents.max_concurrent; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.max_concurrent IS 'Per-agent limit of active tasks; null means assignment.max_concurrent_per_agent.';

--
-- Name: COLUMN dispatch_agents.active_tasks; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.active_tasks IS 'Tasks assigned or running on this agent as of the last fold of its releases (at most about a second old unless a batch holds the row); the live load is in the view dispatch_agent_load (dispatch_agent_live_load), which also subtracts the releases since.';

--
-- Name: COLUMN dispatch_agents.drained; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.drained IS 'Drained agents keep their tasks but receive no new ones.';

--
-- Name: COLUMN dispatch_agents.drained_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.drained_at IS 'When the agent was drained.';

--
-- Name: COLUMN dispatch_agents.drained_by; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.drained_by IS 'Admin caller (X-Agent-ID) that drained it.';

--
-- Name: COLUMN dispatch_agents.last_seen_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.last_seen_at IS 'Last heartbeat (standalone) or last sync from Warren.';

--
-- Name: COLUMN dispatch_agents.last_assigned_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.last_assigned_at IS 'Last assignment to this agent; the least recently assigned agent wins a tie.';

--
-- Name: COLUMN dispatch_agents.wake_requested_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.wake_requested_at IS 'When Dispatch last asked Warren to wake this agent.';

--
-- Name: COLUMN dispatch_agents.avoid_until; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.avoid_until IS 'After a failed wake, the agent gets no new tasks until this instant.';

--
-- Name: COLUMN dispatch_agents.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.created_at IS 'First time Dispatch saw the agent.';

--
-- Name: COLUMN dispatch_agents.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.updated_at IS 'Last change to the row (maintained by trigger).';

--
-- Name: COLUMN dispatch_agents.released_folded; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_agents.released_folded IS 'The agent''s dispatch_agent_releases.released already subtracted from active_tasks (by the last fold).';

--
-- Name: dispatch_agent_load; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.dispatch_agent_load AS
 SELECT a.name,
    a.status,
    a.drained,
    public.dispatch_agent_live_load(a.active_tasks, a.released_folded, r.released) AS active_tasks,
    a.max_concurrent,
    a.capabilities,
    a.last_seen_at,
    a.last_assigned_at
   FROM (public.dispatch_agents a
     LEFT JOIN public.dispatch_agent_releases r ON ((r.agent = a.name)));

--
-- Name: VIEW dispatch_agent_load; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.dispatch_agent_load IS 'Each agent with its live load; max_concurrent null means the configured default.';

--
-- Name: dispatch_task_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_task_events (
    id bigint NOT NULL,
    event_id uuid DEFAULT public.dispatch_uuid_v7() NOT NULL,
    task_id uuid NOT NULL,
    event text NOT NULL,
    agent_id text,
    attempt integer,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    placement jsonb,
    tx xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT dispatch_task_events_event_check CHECK ((event ~ '^[a-z_]+$'::text))
)
WITH (autovacuum_vacuum_insert_scale_factor='0.05');

--
-- Name: TABLE dispatch_task_events; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_task_events IS 'Audit trail: one row per state change, written in the same transaction as the change. Ordered by id.';

--
-- Name: COLUMN dispatch_task_events.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.id IS 'Monotonic sequence; gives the order of events.';

--
-- Name: COLUMN dispatch_task_events.event_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.event_id IS 'Globally unique event id, carried in published messages (and used to deduplicate them).';

--
-- Name: COLUMN dispatch_task_events.task_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.task_id IS 'Task the event belongs to.';

--
-- Name: COLUMN dispatch_task_events.event; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.event IS 'What happened: created, assigned, progress, completed, failed, fail_retry, timeout_retry, timeout_exhausted, reassigned, cancelled, unmatched, context_updated, ...';

--
-- Name: COLUMN dispatch_task_events.agent_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.agent_id IS 'Agent involved (requester, assignee, or the agent that made the call).';

--
-- Name: COLUMN dispatch_task_events.attempt; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.attempt IS 'Task attempt (lease) the event belongs to.';

--
-- Name: COLUMN dispatch_task_events.payload; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.payload IS 'Event body as published.';

--
-- Name: COLUMN dispatch_task_events.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.created_at IS 'When the event was recorded.';

--
-- Name: COLUMN dispatch_task_events.placement; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.placement IS 'Assigned events only: the placement decision (agents considered, each score, why each other one lost or was filtered). Not published to NATS; served by GET /api/v1/tasks/:id/placement.';

--
-- Name: COLUMN dispatch_task_events.tx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_events.tx IS 'The writing transaction (pg_current_xact_id()). The assignment stream reads events in (tx, id) order and only below pg_snapshot_xmin, so an id committed late is never skipped. NULL for events written before migration 0010.';

--
-- Name: dispatch_assignment_feed; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.dispatch_assignment_feed AS
 SELECT e.id,
    e.tx,
    e.task_id,
    e.attempt,
    public.dispatch_stream_recipient(e.event, e.agent_id, e.payload) AS agent,
        CASE e.event
            WHEN 'assigned'::text THEN 'assigned'::text
            WHEN 'cancelled'::text THEN 'cancelled'::text
            WHEN 'timeout_retry'::text THEN 'timeout'::text
            WHEN 'timeout_exhausted'::text THEN 'timeout'::text
            ELSE 'reassigned'::text
        END AS kind
   FROM public.dispatch_task_events e
  WHERE ((e.event = ANY (ARRAY['assigned'::text, 'cancelled'::text, 'reassigned'::text, 'wake_timeout'::text, 'timeout_retry'::text, 'timeout_exhausted'::text])) AND ((e.event <> 'cancelled'::text) OR (NOT (EXISTS ( SELECT 1
           FROM public.dispatch_task_events p
          WHERE ((p.task_id = e.task_id) AND (p.attempt = e.attempt) AND (p.id < e.id) AND (p.event = ANY (ARRAY['timeout_retry'::text, 'timeout_exhausted'::text, 'reassigned'::text, 'wake_timeout'::text, 'fail_retry'::text, 'failed'::text, 'completed'::text]))))))));

--
-- Name: VIEW dispatch_assignment_feed; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.dispatch_assignment_feed IS 'What GET /api/v1/agents/:id/assignments sends: per agent, work given (assigned) and taken away (cancelled; reassigned: the agent stopped or did not wake; timeout), in (tx, id) order.';

--
-- Name: dispatch_capable_scopes; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.dispatch_capable_scopes AS
 SELECT DISTINCT unnest(dispatch_agents.capabilities) AS scope
   FROM public.dispatch_agents
  WHERE ((NOT dispatch_agents.drained) AND (dispatch_agents.status = ANY (ARRAY['ready'::text, 'sleeping'::text, 'busy'::text, 'starting'::text])));

--
-- Name: VIEW dispatch_capable_scopes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.dispatch_capable_scopes IS 'Scopes some agent could serve once it has a free slot: it has the tag and is not drained, stopped, degraded or unknown. A pending task of any other scope is unmatched.';

--
-- Name: dispatch_credentials; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_credentials (
    id uuid DEFAULT public.dispatch_uuid_v7() NOT NULL,
    agent_id text NOT NULL,
    role text NOT NULL,
    scopes text[] DEFAULT '{}'::text[] NOT NULL,
    token_sha256 bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text NOT NULL,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone,
    revoked_by text,
    last_used_at timestamp with time zone,
    CONSTRAINT dispatch_credentials_role_check CHECK ((role = ANY (ARRAY['worker'::text, 'requester'::text, 'observer'::text, 'admin'::text])))
);

--
-- Name: TABLE dispatch_credentials; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_credentials IS 'Bearer credentials issued by an admin (POST /api/v1/agents/:id/credentials). Only the token''s SHA-256 is stored; the token itself was shown once, to whoever issued it.';

--
-- Name: COLUMN dispatch_credentials.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.id IS 'Credential id (UUID v7): names the credential in audit fields such as cancelled_by and drained_by, and in DELETE .../credentials/:id.';

--
-- Name: COLUMN dispatch_credentials.agent_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.agent_id IS 'The agent name a call with this token acts as; an X-Agent-ID sent with it must be this name.';

--
-- Name: COLUMN dispatch_credentials.role; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.role IS 'worker: registers and heartbeats itself, works on its own attempts. requester: creates tasks, reads and cancels its own. observer: reads everything, changes nothing. admin: everything.';

--
-- Name: COLUMN dispatch_credentials.scopes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.scopes IS 'Empty: any scope. Otherwise a worker registers only these capabilities (and is given only tasks of these scopes), and a requester creates tasks only in these scopes.';

--
-- Name: COLUMN dispatch_credentials.token_sha256; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.token_sha256 IS 'SHA-256 of the bearer token; the lookup key for every authenticated call.';

--
-- Name: COLUMN dispatch_credentials.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.created_at IS 'When it was issued.';

--
-- Name: COLUMN dispatch_credentials.created_by; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.created_by IS 'Who issued it: a credential id, or "bootstrap" for the DISPATCH_ADMIN_TOKEN admin.';

--
-- Name: COLUMN dispatch_credentials.expires_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.expires_at IS 'Refused from this time on; NULL never expires.';

--
-- Name: COLUMN dispatch_credentials.revoked_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.revoked_at IS 'Refused from this time on (DELETE .../credentials/:id); the row stays as the record.';

--
-- Name: COLUMN dispatch_credentials.revoked_by; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.revoked_by IS 'Who revoked it: a credential id, or "bootstrap".';

--
-- Name: COLUMN dispatch_credentials.last_used_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_credentials.last_used_at IS 'Last call made with it, to the minute (written at most once a minute per replica, not on every call).';

--
-- Name: dispatch_event_outbox; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_event_outbox (
    id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
)
WITH (autovacuum_vacuum_scale_factor='0.0', autovacuum_vacuum_threshold='1000', autovacuum_vacuum_cost_delay='0');

--
-- Name: TABLE dispatch_event_outbox; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_event_outbox IS 'Task and scope events committed but not yet acknowledged by JetStream; the publisher deletes each id after the acknowledgement.';

--
-- Name: COLUMN dispatch_event_outbox.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_event_outbox.id IS 'dispatch_task_events.id or dispatch_scope_events.id (one sequence) of the owed event; publication follows this order.';

--
-- Name: COLUMN dispatch_event_outbox.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_event_outbox.created_at IS 'When the event was queued; the oldest gives the publication lag.';

--
-- Name: dispatch_overdue_tasks; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.dispatch_overdue_tasks AS
 SELECT dispatch_tasks.id,
    dispatch_tasks.scope,
    dispatch_tasks.status,
    dispatch_tasks.assignee,
    dispatch_tasks.attempt,
    dispatch_tasks.deadline_at,
    (now() - dispatch_tasks.deadline_at) AS overdue_by
   FROM public.dispatch_tasks
  WHERE ((dispatch_tasks.status = ANY (ARRAY['assigned'::text, 'running'::text])) AND (dispatch_tasks.deadline_at < now()));

--
-- Name: VIEW dispatch_overdue_tasks; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.dispatch_overdue_tasks IS 'Assigned or running tasks past their deadline that no timeout has handled yet (should stay empty).';

--
-- Name: dispatch_periodic_publications; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_periodic_publications (
    name text NOT NULL,
    slot bigint NOT NULL
);

--
-- Name: TABLE dispatch_periodic_publications; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_periodic_publications IS 'Last interval slot in which a periodic message (swarm.dispatch.stats) was published; a replica publishes only if it advances the slot, so one replica publishes per interval.';

--
-- Name: COLUMN dispatch_periodic_publications.name; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_periodic_publications.name IS 'Which periodic message.';

--
-- Name: COLUMN dispatch_periodic_publications.slot; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_periodic_publications.slot IS 'floor(epoch milliseconds / interval) of the last publication.';

--
-- Name: dispatch_queue_depth; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.dispatch_queue_depth AS
 SELECT dispatch_tasks.scope,
    dispatch_tasks.status,
    count(*) AS tasks,
    min(dispatch_tasks.created_at) AS oldest_created_at,
        CASE
            WHEN (dispatch_tasks.status = 'waiting'::text) THEN 'dependencies'::text
            WHEN (dispatch_tasks.status <> 'pending'::text) THEN NULL::text
            WHEN (dispatch_tasks.not_before > now()) THEN 'time'::text
            ELSE 'agent'::text
        END AS waiting_for
   FROM public.dispatch_tasks
  WHERE (dispatch_tasks.status = ANY (ARRAY['waiting'::text, 'pending'::text, 'assigned'::text, 'running'::text]))
  GROUP BY dispatch_tasks.scope, dispatch_tasks.status,
        CASE
            WHEN (dispatch_tasks.status = 'waiting'::text) THEN 'dependencies'::text
            WHEN (dispatch_tasks.status <> 'pending'::text) THEN NULL::text
            WHEN (dispatch_tasks.not_before > now()) THEN 'time'::text
            ELSE 'agent'::text
        END;

--
-- Name: VIEW dispatch_queue_depth; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.dispatch_queue_depth IS 'Open work by scope and status, with the age of the oldest task; waiting_for says why open work does not run yet: dependencies (status waiting), time (pending: delayed, or in retry backoff) or agent (pending: due, waiting for a free capable agent).';

--
-- Name: dispatch_replicas; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_replicas (
    id text NOT NULL,
    worker_ids text[] DEFAULT '{}'::text[] NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: TABLE dispatch_replicas; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_replicas IS 'Live Dispatch processes. A replica silent past worker.dead_after_ms is dead: the others release its graphile-worker job locks.';

--
-- Name: COLUMN dispatch_replicas.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_replicas.id IS 'Replica id: host, pid and a random suffix.';

--
-- Name: COLUMN dispatch_replicas.worker_ids; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_replicas.worker_ids IS 'graphile-worker worker ids run by this replica (they appear in locked_by of its jobs).';

--
-- Name: COLUMN dispatch_replicas.started_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_replicas.started_at IS 'When the replica started.';

--
-- Name: COLUMN dispatch_replicas.heartbeat_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_replicas.heartbeat_at IS 'Last heartbeat; refreshed every worker.heartbeat_interval_ms.';

--
-- Name: dispatch_scheduled_tasks; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.dispatch_scheduled_tasks AS
 SELECT dispatch_tasks.id,
    dispatch_tasks.scope,
    dispatch_tasks.priority,
    dispatch_tasks.not_before AS waiting_until,
    dispatch_tasks.run_at,
    dispatch_tasks.start_by,
    (dispatch_tasks.not_before - now()) AS due_in,
        CASE
            WHEN ((dispatch_tasks.run_at IS NOT NULL) AND (dispatch_tasks.not_before = dispatch_tasks.run_at)) THEN 'run_at'::text
            ELSE 'retry backoff'::text
        END AS reason
   FROM public.dispatch_tasks
  WHERE ((dispatch_tasks.status = 'pending'::text) AND (dispatch_tasks.not_before > now()));

--
-- Name: VIEW dispatch_scheduled_tasks; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.dispatch_scheduled_tasks IS 'Pending tasks waiting until a time (run_at or a retry backoff), not for an agent; ORDER BY waiting_until reads dispatch_tasks_not_before_idx.';

--
-- Name: dispatch_schedules; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_schedules (
    id uuid DEFAULT public.dispatch_uuid_v7() NOT NULL,
    owner text NOT NULL,
    cron text NOT NULL,
    time_zone text NOT NULL,
    template jsonb NOT NULL,
    catch_up text DEFAULT 'skip'::text NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    next_run_at timestamp with time zone,
    last_run_at timestamp with time zone,
    last_task_id uuid,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT dispatch_schedules_catch_up_check CHECK ((catch_up = ANY (ARRAY['skip'::text, 'one'::text]))),
    CONSTRAINT dispatch_schedules_cron_check CHECK (((length(cron) >= 1) AND (length(cron) <= 200))),
    CONSTRAINT dispatch_schedules_owner_check CHECK (((length(owner) >= 1) AND (length(owner) <= 200))),
    CONSTRAINT dispatch_schedules_paused_has_no_next CHECK (((NOT paused) OR (next_run_at IS NULL))),
    CONSTRAINT dispatch_schedules_time_zone_check CHECK (((length(time_zone) >= 1) AND (length(time_zone) <= 100)))
);

--
-- Name: TABLE dispatch_schedules; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_schedules IS 'Recurring tasks: a cron expression in a time zone and a task template. The ScheduleRunner of any replica creates the task of each occurrence once (FOR UPDATE SKIP LOCKED, next_run_at advanced in the same transaction).';

--
-- Name: COLUMN dispatch_schedules.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.id IS 'Schedule id; its tasks carry the Idempotency-Key schedule:<id>@<occurrence, ISO 8601>.';

--
-- Name: COLUMN dispatch_schedules.owner; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.owner IS 'The agent that created the schedule: the requester of every task it creates.';

--
-- Name: COLUMN dispatch_schedules.cron; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.cron IS 'Cron expression (5 fields, or 6 with seconds first), read by croner.';

--
-- Name: COLUMN dispatch_schedules.time_zone; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.time_zone IS 'IANA time zone the cron expression is read in (daylight saving time included).';

--
-- Name: COLUMN dispatch_schedules.template; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.template IS 'The task to create at each occurrence: the fields of POST /api/v1/tasks (title, scope, priority, context, ...).';

--
-- Name: COLUMN dispatch_schedules.catch_up; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.catch_up IS 'Occurrences missed by more than schedules.late_after_ms (every replica down): skip creates none of them; one creates one task for them all.';

--
-- Name: COLUMN dispatch_schedules.paused; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.paused IS 'A paused schedule creates nothing; resuming starts from the next occurrence after the resume.';

--
-- Name: COLUMN dispatch_schedules.next_run_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.next_run_at IS 'The next occurrence not yet handled; null while paused or when the expression has no future time.';

--
-- Name: COLUMN dispatch_schedules.last_run_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.last_run_at IS 'The occurrence of the last task created.';

--
-- Name: COLUMN dispatch_schedules.last_task_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.last_task_id IS 'The last task created (it may since have been deleted by retention).';

--
-- Name: COLUMN dispatch_schedules.last_error; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.last_error IS 'Why the last occurrence created no task (its template was refused), or null.';

--
-- Name: COLUMN dispatch_schedules.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.created_at IS 'When the schedule was created.';

--
-- Name: COLUMN dispatch_schedules.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_schedules.updated_at IS 'Last change to the row (maintained by trigger).';

--
-- Name: dispatch_scope_counts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_scope_counts (
    scope text NOT NULL,
    status text NOT NULL,
    tasks bigint NOT NULL,
    CONSTRAINT dispatch_scope_counts_status_check CHECK ((status = ANY (ARRAY['waiting'::text, 'pending'::text, 'assigned'::text, 'running'::text])))
);

--
-- Name: TABLE dispatch_scope_counts; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_scope_counts IS 'Open tasks per scope and status: the sum of tasks over the rows of a (scope, status) is how many there are now. Statement triggers on dispatch_tasks append changes; dispatch_fold_scope_counters() folds them into one row per key. A key summing to 0 stays, so a scope seen once keeps reporting. Read with sum() ... GROUP BY scope, status.';

--
-- Name: COLUMN dispatch_scope_counts.scope; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_counts.scope IS 'Task scope (dispatch_tasks.scope).';

--
-- Name: COLUMN dispatch_scope_counts.status; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_counts.status IS 'waiting, pending, assigned or running.';

--
-- Name: COLUMN dispatch_scope_counts.tasks; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_counts.tasks IS 'A change in the number of tasks of this scope in this status (negative when they left it); summed per key.';

--
-- Name: dispatch_task_events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.dispatch_task_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.dispatch_task_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: dispatch_scope_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_scope_events (
    id bigint DEFAULT nextval('public.dispatch_task_events_id_seq'::regclass) NOT NULL,
    event_id uuid DEFAULT public.dispatch_uuid_v7() NOT NULL,
    scope text NOT NULL,
    event text NOT NULL,
    changed_by text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT dispatch_scope_events_event_check CHECK ((event = ANY (ARRAY['paused'::text, 'resumed'::text, 'limits_changed'::text])))
);

--
-- Name: TABLE dispatch_scope_events; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_scope_events IS 'Audit trail of scope controls: one row per change made by PATCH /api/v1/scopes/:scope, in the same transaction. Ids share dispatch_task_events_id_seq, so both trails replay together in id order; published to NATS as swarm.dispatch.scope.<event> through dispatch_event_outbox.';

--
-- Name: COLUMN dispatch_scope_events.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_events.id IS 'From the task events'' sequence: orders scope changes among task events.';

--
-- Name: COLUMN dispatch_scope_events.event_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_events.event_id IS 'Globally unique event id, carried in the published message (and used to deduplicate it).';

--
-- Name: COLUMN dispatch_scope_events.scope; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_events.scope IS 'The scope changed.';

--
-- Name: COLUMN dispatch_scope_events.event; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_events.event IS 'paused, resumed, or limits_changed (max_running or max_starts_per_minute changed without a pause or resume).';

--
-- Name: COLUMN dispatch_scope_events.changed_by; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_events.changed_by IS 'Who: a credential id, "bootstrap", or the agent in header mode.';

--
-- Name: COLUMN dispatch_scope_events.payload; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_events.payload IS 'Event body as published: the scope''s controls after the change.';

--
-- Name: COLUMN dispatch_scope_events.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_events.created_at IS 'When the change was made.';

--
-- Name: dispatch_scope_observations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_scope_observations (
    scope text NOT NULL,
    kind text NOT NULL,
    outcome text NOT NULL,
    le double precision NOT NULL,
    observations bigint NOT NULL,
    seconds double precision NOT NULL,
    CONSTRAINT dispatch_scope_observations_kind_check CHECK ((kind = ANY (ARRAY['finished'::text, 'schedule_to_start'::text, 'run'::text]))),
    CONSTRAINT dispatch_scope_observations_observations_check CHECK ((observations >= 0))
);

--
-- Name: TABLE dispatch_scope_observations; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_scope_observations IS 'Monotonic histograms per scope, per bucket (not cumulative): the sums over the rows of a (scope, kind, outcome, le) key. The task triggers append observations; dispatch_fold_scope_counters() folds each key into one row. Never decremented: retention deleting tasks does not change them.';

--
-- Name: COLUMN dispatch_scope_observations.scope; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_observations.scope IS 'Task scope.';

--
-- Name: COLUMN dispatch_scope_observations.kind; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_observations.kind IS 'finished: a task entered a terminal status (seconds from created_at); schedule_to_start: an assignment (seconds waiting pending); run: an attempt ended (seconds from started_at, or assigned_at if it never reported progress).';

--
-- Name: COLUMN dispatch_scope_observations.outcome; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_observations.outcome IS 'finished and run: the terminal status reached, or retried when the attempt ended with the task back to pending; empty for schedule_to_start.';

--
-- Name: COLUMN dispatch_scope_observations.le; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_observations.le IS 'Upper bound of the bucket in seconds (one of dispatch_latency_buckets(); Infinity for the last).';

--
-- Name: COLUMN dispatch_scope_observations.observations; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_observations.observations IS 'Observations that fell in this bucket (and in no lower one); summed per key.';

--
-- Name: COLUMN dispatch_scope_observations.seconds; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_observations.seconds IS 'Sum of those observations in seconds; summed per key.';

--
-- Name: dispatch_scope_starts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_scope_starts (
    scope text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    starts integer NOT NULL,
    CONSTRAINT dispatch_scope_starts_starts_check CHECK ((starts > 0))
);

--
-- Name: TABLE dispatch_scope_starts; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_scope_starts IS 'Assignments of scopes that have max_starts_per_minute, one row per assignment batch and scope, written under the scope''s row lock; the sum over the last 60 s is the sliding window. Rows older than a few minutes are deleted by the next batch of the scope.';

--
-- Name: COLUMN dispatch_scope_starts.scope; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_starts.scope IS 'Task scope.';

--
-- Name: COLUMN dispatch_scope_starts.started_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_starts.started_at IS 'The assigning transaction''s now(), the same instant as the assigned events'' created_at.';

--
-- Name: COLUMN dispatch_scope_starts.starts; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_starts.starts IS 'Tasks of the scope that batch assigned.';

--
-- Name: dispatch_scopes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_scopes (
    scope text NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    max_running integer,
    max_starts_per_minute integer,
    changed_at timestamp with time zone DEFAULT now() NOT NULL,
    changed_by text NOT NULL,
    CONSTRAINT dispatch_scopes_max_running_check CHECK ((max_running > 0)),
    CONSTRAINT dispatch_scopes_max_starts_per_minute_check CHECK ((max_starts_per_minute > 0))
);

--
-- Name: TABLE dispatch_scopes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_scopes IS 'Operator controls per scope (PATCH /api/v1/scopes/:scope). A scope without a row is unpaused and unlimited. Read by every assignment batch in its own transaction; rows of limited scopes are locked FOR UPDATE there, so limits hold exactly across replicas.';

--
-- Name: COLUMN dispatch_scopes.scope; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scopes.scope IS 'Task scope (dispatch_tasks.scope, lower case).';

--
-- Name: COLUMN dispatch_scopes.paused; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scopes.paused IS 'True: tasks of this scope are accepted but none is assigned until resumed.';

--
-- Name: COLUMN dispatch_scopes.max_running; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scopes.max_running IS 'Most tasks of this scope assigned or running at once across the swarm; NULL for no limit.';

--
-- Name: COLUMN dispatch_scopes.max_starts_per_minute; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scopes.max_starts_per_minute IS 'Most assignments of this scope in any 60 seconds (counted in dispatch_scope_starts while the limit is set); NULL for no limit.';

--
-- Name: COLUMN dispatch_scopes.changed_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scopes.changed_at IS 'Last change.';

--
-- Name: COLUMN dispatch_scopes.changed_by; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scopes.changed_by IS 'Who made the last change: a credential id, "bootstrap" for the admin token, or the agent in header mode.';

--
-- Name: dispatch_task_dependencies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_task_dependencies (
    task_id uuid NOT NULL,
    depends_on_id uuid NOT NULL,
    CONSTRAINT dispatch_task_dependencies_check CHECK ((task_id <> depends_on_id))
);

--
-- Name: TABLE dispatch_task_dependencies; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_task_dependencies IS 'Task dependency graph: task_id waits for depends_on_id to complete. Written once, when task_id is created (its dependencies existed before it, so there is no cycle). Edges go with either task when retention deletes it.';

--
-- Name: COLUMN dispatch_task_dependencies.task_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_dependencies.task_id IS 'The dependent task.';

--
-- Name: COLUMN dispatch_task_dependencies.depends_on_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_dependencies.depends_on_id IS 'A task it waits for.';

--
-- Name: dispatch_task_readers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_task_readers (
    task_id uuid NOT NULL,
    reader text NOT NULL,
    reason text NOT NULL,
    task_created_at timestamp with time zone NOT NULL,
    CONSTRAINT dispatch_task_readers_reason_check CHECK ((reason = ANY (ARRAY['former_assignee'::text, 'parent_requester'::text])))
);

--
-- Name: TABLE dispatch_task_readers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispatch_task_readers IS 'Agents that may read a task besides its requester and current assignee: agents that held an earlier attempt, and the requester of its parent. Written by triggers (dispatch_tasks_former_assignee, dispatch_tasks_parent_reader); read by task lists and GET /api/v1/tasks/:id for callers that do not read every task.';

--
-- Name: COLUMN dispatch_task_readers.task_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_readers.task_id IS 'The task that may be read (its rows go with it when retention deletes it).';

--
-- Name: COLUMN dispatch_task_readers.reader; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_readers.reader IS 'The agent that may read it.';

--
-- Name: COLUMN dispatch_task_readers.reason; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_readers.reason IS 'former_assignee: held an earlier attempt, then the task went to another agent; parent_requester: requested the task''s parent.';

--
-- Name: COLUMN dispatch_task_readers.task_created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_task_readers.task_created_at IS 'The task''s created_at, copied so a reader''s tasks list in the API''s order from one index.';

--
-- Name: dispatch_waiting_tasks; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.dispatch_waiting_tasks AS
 SELECT t.id,
    t.scope,
    t.priority,
    t.requester,
    t.waiting_on,
    t.on_dependency_failure,
    t.created_at,
    ( SELECT array_agg(d.depends_on_id ORDER BY d.depends_on_id) AS array_agg
           FROM (public.dispatch_task_dependencies d
             JOIN public.dispatch_tasks o ON ((o.id = d.depends_on_id)))
          WHERE ((d.task_id = t.id) AND (o.status <> ALL (ARRAY['completed'::text, 'failed'::text, 'cancelled'::text, 'timeout'::text])))) AS open_dependencies
   FROM public.dispatch_tasks t
  WHERE (t.status = 'waiting'::text);

--
-- Name: VIEW dispatch_waiting_tasks; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.dispatch_waiting_tasks IS 'Tasks waiting for their dependencies (status waiting), with the dependencies still open. Tasks waiting for an agent are pending (dispatch_queue_depth).';

--
-- Name: dispatch_agent_releases dispatch_agent_releases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_agent_releases
    ADD CONSTRAINT dispatch_agent_releases_pkey PRIMARY KEY (agent);

--
-- Name: dispatch_agents dispatch_agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_agents
    ADD CONSTRAINT dispatch_agents_pkey PRIMARY KEY (name);

--
-- Name: dispatch_credentials dispatch_credentials_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_credentials
    ADD CONSTRAINT dispatch_credentials_pkey PRIMARY KEY (id);

--
-- Name: dispatch_credentials dispatch_credentials_token_unique; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_credentials
    ADD CONSTRAINT dispatch_credentials_token_unique UNIQUE (token_sha256);

--
-- Name: dispatch_event_outbox dispatch_event_outbox_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_event_outbox
    ADD CONSTRAINT dispatch_event_outbox_pkey PRIMARY KEY (id);

--
-- Name: dispatch_periodic_publications dispatch_periodic_publications_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_periodic_publications
    ADD CONSTRAINT dispatch_periodic_publications_pkey PRIMARY KEY (name);

--
-- Name: dispatch_replicas dispatch_replicas_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_replicas
    ADD CONSTRAINT dispatch_replicas_pkey PRIMARY KEY (id);

--
-- Name: dispatch_schedules dispatch_schedules_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_schedules
    ADD CONSTRAINT dispatch_schedules_pkey PRIMARY KEY (id);

--
-- Name: dispatch_scope_events dispatch_scope_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_scope_events
    ADD CONSTRAINT dispatch_scope_events_pkey PRIMARY KEY (id);

--
-- Name: dispatch_scopes dispatch_scopes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_scopes
    ADD CONSTRAINT dispatch_scopes_pkey PRIMARY KEY (scope);

--
-- Name: dispatch_task_dependencies dispatch_task_dependencies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_task_dependencies
    ADD CONSTRAINT dispatch_task_dependencies_pkey PRIMARY KEY (task_id, depends_on_id);

--
-- Name: dispatch_task_events dispatch_task_events_event_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_task_events
    ADD CONSTRAINT dispatch_task_events_event_id_key UNIQUE (event_id);

--
-- Name: dispatch_task_events dispatch_task_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_task_events
    ADD CONSTRAINT dispatch_task_events_pkey PRIMARY KEY (id);

--
-- Name: dispatch_task_readers dispatch_task_readers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_task_readers
    ADD CONSTRAINT dispatch_task_readers_pkey PRIMARY KEY (task_id, reader);

--
-- Name: dispatch_tasks dispatch_tasks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_tasks
    ADD CONSTRAINT dispatch_tasks_pkey PRIMARY KEY (id);

--
-- Name: dispatch_credentials_agent; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_credentials_agent ON public.dispatch_credentials USING btree (agent_id, created_at);

--
-- Name: dispatch_schedules_due_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_schedules_due_idx ON public.dispatch_schedules USING btree (next_run_at) WHERE (next_run_at IS NOT NULL);

--
-- Name: dispatch_schedules_owner_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_schedules_owner_idx ON public.dispatch_schedules USING btree (owner, created_at DESC, id DESC);

--
-- Name: dispatch_scope_counts_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_scope_counts_key ON public.dispatch_scope_counts USING btree (scope, status);

--
-- Name: dispatch_scope_events_scope; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_scope_events_scope ON public.dispatch_scope_events USING btree (scope, id);

--
-- Name: dispatch_scope_observations_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_scope_observations_key ON public.dispatch_scope_observations USING btree (scope, kind, outcome, le);

--
-- Name: dispatch_scope_starts_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_scope_starts_key ON public.dispatch_scope_starts USING btree (scope, started_at);

--
-- Name: dispatch_task_dependencies_dependents_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_task_dependencies_dependents_idx ON public.dispatch_task_dependencies USING btree (depends_on_id, task_id);

--
-- Name: dispatch_task_events_stream_agent_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_task_events_stream_agent_idx ON public.dispatch_task_events USING btree (public.dispatch_stream_recipient(event, agent_id, payload), tx, id) WHERE (event = ANY (ARRAY['assigned'::text, 'cancelled'::text, 'reassigned'::text, 'wake_timeout'::text, 'timeout_retry'::text, 'timeout_exhausted'::text]));

--
-- Name: INDEX dispatch_task_events_stream_agent_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_task_events_stream_agent_idx IS 'One agent''s stream events in stream order (a reconnect''s replay, a long poll).';

--
-- Name: dispatch_task_events_stream_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_task_events_stream_idx ON public.dispatch_task_events USING btree (tx, id) WHERE (event = ANY (ARRAY['assigned'::text, 'cancelled'::text, 'reassigned'::text, 'wake_timeout'::text, 'timeout_retry'::text, 'timeout_exhausted'::text]));

--
-- Name: INDEX dispatch_task_events_stream_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_task_events_stream_idx IS 'The events the assignment stream sends, in stream order (live reads of every connected agent).';

--
-- Name: dispatch_task_events_task_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_task_events_task_idx ON public.dispatch_task_events USING btree (task_id, id);

--
-- Name: dispatch_task_readers_list_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_task_readers_list_idx ON public.dispatch_task_readers USING btree (reader, task_created_at DESC, task_id DESC);

--
-- Name: INDEX dispatch_task_readers_list_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_task_readers_list_idx IS 'A reader''s tasks newest first, as GET /api/v1/tasks pages them.';

--
-- Name: dispatch_tasks_active_by_assignee_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_active_by_assignee_idx ON public.dispatch_tasks USING btree (assignee) WHERE (status = ANY (ARRAY['assigned'::text, 'running'::text]));

--
-- Name: dispatch_tasks_assignee_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_assignee_idx ON public.dispatch_tasks USING btree (assignee, created_at DESC, id DESC) WHERE (assignee IS NOT NULL);

--
-- Name: dispatch_tasks_completed_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_completed_idx ON public.dispatch_tasks USING btree (completed_at) WHERE (completed_at IS NOT NULL);

--
-- Name: dispatch_tasks_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_created_idx ON public.dispatch_tasks USING btree (created_at DESC, id DESC);

--
-- Name: dispatch_tasks_deadline_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_deadline_idx ON public.dispatch_tasks USING btree (deadline_at) WHERE (status = ANY (ARRAY['assigned'::text, 'running'::text]));

--
-- Name: INDEX dispatch_tasks_deadline_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_tasks_deadline_idx IS 'Open attempts by deadline: the due timer arms for the first and times out those past theirs (migration 0023), and the overdue view reads it.';

--
-- Name: dispatch_tasks_idempotency_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX dispatch_tasks_idempotency_idx ON public.dispatch_tasks USING btree (requester, idempotency_key) WHERE (idempotency_key IS NOT NULL);

--
-- Name: dispatch_tasks_not_before_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_not_before_idx ON public.dispatch_tasks USING btree (not_before) WHERE ((status = 'pending'::text) AND (not_before IS NOT NULL));

--
-- Name: INDEX dispatch_tasks_not_before_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_tasks_not_before_idx IS 'Pending tasks waiting until a time (run_at or retry backoff): the due timer reads the earliest.';

--
-- Name: dispatch_tasks_parent_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_parent_idx ON public.dispatch_tasks USING btree (parent_id) WHERE (parent_id IS NOT NULL);

--
-- Name: dispatch_tasks_pending_by_scope_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_pending_by_scope_idx ON public.dispatch_tasks USING btree (scope, created_at) WHERE (status = 'pending'::text);

--
-- Name: INDEX dispatch_tasks_pending_by_scope_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_tasks_pending_by_scope_idx IS 'Pending tasks by scope, oldest first: dispatch_oldest_pending_seconds reads one entry per scope.';

--
-- Name: dispatch_tasks_pending_scope_rank_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_pending_scope_rank_idx ON public.dispatch_tasks USING btree (scope, rank, id) WHERE (status = 'pending'::text);

--
-- Name: INDEX dispatch_tasks_pending_scope_rank_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_tasks_pending_scope_rank_idx IS 'The claim: each scope''s pending tasks in rank (aging) order.';

--
-- Name: dispatch_tasks_requester_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_requester_idx ON public.dispatch_tasks USING btree (requester, created_at DESC, id DESC);

--
-- Name: dispatch_tasks_start_alarm_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_start_alarm_idx ON public.dispatch_tasks USING btree (created_at) WHERE ((status = 'pending'::text) AND (start_timeout_ms IS NOT NULL) AND (start_alarm_at IS NULL));

--
-- Name: dispatch_tasks_start_by_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_start_by_idx ON public.dispatch_tasks USING btree (start_by) WHERE ((status = 'pending'::text) AND (start_by IS NOT NULL));

--
-- Name: INDEX dispatch_tasks_start_by_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_tasks_start_by_idx IS 'Pending tasks that expire: the due timer reads the earliest start_by and expires those past it.';

--
-- Name: dispatch_tasks_unmarked_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_unmarked_idx ON public.dispatch_tasks USING btree (scope) WHERE ((status = 'pending'::text) AND (unmatched_at IS NULL));

--
-- Name: INDEX dispatch_tasks_unmarked_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_tasks_unmarked_idx IS 'Pending tasks whose unmatched event is not yet recorded, by scope: the unmatched pass probes it once per scope.';

--
-- Name: dispatch_tasks_waiting_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_waiting_idx ON public.dispatch_tasks USING btree (created_at) WHERE (status = 'waiting'::text);

--
-- Name: dispatch_agents dispatch_agents_count_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_agents_count_on_insert BEFORE INSERT ON public.dispatch_agents FOR EACH ROW EXECUTE FUNCTION public.dispatch_agents_count_existing();

--
-- Name: dispatch_agents dispatch_agents_return_tasks_on_stop; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_agents_return_tasks_on_stop AFTER UPDATE OF status ON public.dispatch_agents FOR EACH ROW WHEN (((new.status = 'stopped'::text) AND (old.status IS DISTINCT FROM 'stopped'::text))) EXECUTE FUNCTION public.dispatch_agents_return_tasks_on_stop();

--
-- Name: dispatch_agents dispatch_agents_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_agents_touch BEFORE UPDATE ON public.dispatch_agents FOR EACH ROW EXECUTE FUNCTION public.dispatch_touch_updated_at();

--
-- Name: dispatch_agents dispatch_agents_wake_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_agents_wake_on_insert AFTER INSERT ON public.dispatch_agents FOR EACH ROW WHEN (((new.status = ANY (ARRAY['ready'::text, 'sleeping'::text, 'busy'::text])) AND (NOT new.drained))) EXECUTE FUNCTION public.dispatch_agents_wake();

--
-- Name: dispatch_agents dispatch_agents_wake_on_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_agents_wake_on_update AFTER UPDATE ON public.dispatch_agents FOR EACH ROW WHEN (((new.status = ANY (ARRAY['ready'::text, 'sleeping'::text, 'busy'::text])) AND (NOT new.drained) AND ((old.status IS DISTINCT FROM new.status) OR old.drained OR (old.capabilities IS DISTINCT FROM new.capabilities) OR (old.max_concurrent IS DISTINCT FROM new.max_concurrent) OR ((old.avoid_until IS NOT NULL) AND (new.avoid_until IS NULL))))) EXECUTE FUNCTION public.dispatch_agents_wake();

--
-- Name: dispatch_schedules dispatch_schedules_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_schedules_touch BEFORE UPDATE ON public.dispatch_schedules FOR EACH ROW EXECUTE FUNCTION public.dispatch_touch_updated_at();

--
-- Name: dispatch_scope_events dispatch_scope_events_outbox; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_scope_events_outbox AFTER INSERT ON public.dispatch_scope_events REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_queue_events_for_publication();

--
-- Name: dispatch_task_events dispatch_task_events_notify_assignments; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_task_events_notify_assignments AFTER INSERT ON public.dispatch_task_events REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_notify_assignments();

--
-- Name: dispatch_task_events dispatch_task_events_outbox; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_task_events_outbox AFTER INSERT ON public.dispatch_task_events REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_queue_events_for_publication();

--
-- Name: dispatch_tasks dispatch_tasks_active_on_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_active_on_delete AFTER DELETE ON public.dispatch_tasks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_sync_active_tasks_delete();

--
-- Name: dispatch_tasks dispatch_tasks_active_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_active_on_insert AFTER INSERT ON public.dispatch_tasks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_sync_active_tasks_insert();

--
-- Name: dispatch_tasks dispatch_tasks_active_on_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_active_on_update AFTER UPDATE ON public.dispatch_tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_sync_active_tasks();

--
-- Name: dispatch_tasks dispatch_tasks_former_assignee; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_former_assignee AFTER UPDATE OF assignee ON public.dispatch_tasks FOR EACH ROW WHEN (((old.assignee IS NOT NULL) AND (old.assignee IS DISTINCT FROM new.assignee))) EXECUTE FUNCTION public.dispatch_remember_former_assignee();

--
-- Name: dispatch_tasks dispatch_tasks_parent_reader; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_parent_reader AFTER INSERT ON public.dispatch_tasks FOR EACH ROW WHEN ((new.parent_id IS NOT NULL)) EXECUTE FUNCTION public.dispatch_add_parent_reader();

--
-- Name: dispatch_tasks dispatch_tasks_rank_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_rank_on_insert BEFORE INSERT ON public.dispatch_tasks FOR EACH ROW WHEN ((new.rank IS NULL)) EXECUTE FUNCTION public.dispatch_tasks_fill_rank();

--
-- Name: dispatch_tasks dispatch_tasks_rank_on_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_rank_on_update BEFORE UPDATE OF priority, rank ON public.dispatch_tasks FOR EACH ROW WHEN (((new.priority IS DISTINCT FROM old.priority) OR (new.rank IS NULL))) EXECUTE FUNCTION public.dispatch_tasks_fill_rank();

--
-- Name: dispatch_tasks dispatch_tasks_scope_counts_on_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_scope_counts_on_delete AFTER DELETE ON public.dispatch_tasks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_scope_counts_on_delete();

--
-- Name: dispatch_tasks dispatch_tasks_scope_counts_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_scope_counts_on_insert AFTER INSERT ON public.dispatch_tasks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_scope_counts_on_insert();

--
-- Name: dispatch_tasks dispatch_tasks_scope_counts_on_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_scope_counts_on_update AFTER UPDATE ON public.dispatch_tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_scope_counts_on_update();

--
-- Name: dispatch_tasks dispatch_tasks_settle_dependents; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_settle_dependents AFTER UPDATE ON public.dispatch_tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_settle_dependents();

--
-- Name: dispatch_tasks dispatch_tasks_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_touch BEFORE UPDATE ON public.dispatch_tasks FOR EACH ROW EXECUTE FUNCTION public.dispatch_touch_updated_at();

--
-- Name: dispatch_tasks dispatch_tasks_waiting_counts_on_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_waiting_counts_on_delete AFTER DELETE ON public.dispatch_tasks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_scope_counts_waiting();

--
-- Name: dispatch_tasks dispatch_tasks_waiting_counts_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_waiting_counts_on_insert AFTER INSERT ON public.dispatch_tasks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_scope_counts_waiting();

--
-- Name: dispatch_tasks dispatch_tasks_waiting_counts_on_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_waiting_counts_on_update AFTER UPDATE ON public.dispatch_tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_scope_counts_waiting();

--
-- Name: dispatch_tasks dispatch_tasks_wake_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_wake_on_insert AFTER INSERT ON public.dispatch_tasks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_tasks_wake_on_insert();

--
-- Name: dispatch_tasks dispatch_tasks_wake_on_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_wake_on_update AFTER UPDATE ON public.dispatch_tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_tasks_wake_on_update();

--
-- Name: dispatch_task_dependencies dispatch_task_dependencies_depends_on_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_task_dependencies
    ADD CONSTRAINT dispatch_task_dependencies_depends_on_id_fkey FOREIGN KEY (depends_on_id) REFERENCES public.dispatch_tasks(id) ON DELETE CASCADE;

--
-- Name: dispatch_task_dependencies dispatch_task_dependencies_task_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_task_dependencies
    ADD CONSTRAINT dispatch_task_dependencies_task_id_fkey FOREIGN KEY (task_id) REFERENCES public.dispatch_tasks(id) ON DELETE CASCADE;

--
-- Name: dispatch_task_events dispatch_task_events_task_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_task_events
    ADD CONSTRAINT dispatch_task_events_task_id_fkey FOREIGN KEY (task_id) REFERENCES public.dispatch_tasks(id) ON DELETE CASCADE;

--
-- Name: dispatch_task_readers dispatch_task_readers_task_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_task_readers
    ADD CONSTRAINT dispatch_task_readers_task_id_fkey FOREIGN KEY (task_id) REFERENCES public.dispatch_tasks(id) ON DELETE CASCADE;

--
-- Name: dispatch_tasks dispatch_tasks_parent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_tasks
    ADD CONSTRAINT dispatch_tasks_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.dispatch_tasks(id) ON DELETE SET NULL;

--
-- PostgreSQL database dump complete
--
