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
-- Name: dispatch_agents_count_existing(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_agents_count_existing() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  NEW.active_tasks := (SELECT count(*) FROM dispatch_tasks
                        WHERE assignee = NEW.name AND status IN ('assigned', 'running'));
  RETURN NEW;
END $$;

--
-- Name: dispatch_agents_return_tasks_on_stop(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_agents_return_tasks_on_stop() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
  budget integer := coalesce(nullif(current_setting('dispatch.reassign_budget', true), '')::integer, 3);
  returned integer;
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
  ), e AS (
    INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
    SELECT id, CASE WHEN status = 'pending' THEN 'reassigned' ELSE 'failed' END, NEW.name, attempt,
           CASE WHEN status = 'pending'
                THEN jsonb_build_object('task_id', id, 'from', NEW.name, 'reason', 'agent stopped', 'reassign_count', reassign_count)
                ELSE jsonb_build_object('task_id', id, 'error', error) END
      FROM t
  )
  SELECT coalesce(sum(dispatch_unschedule_timeout(id)), 0) INTO returned FROM t;
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
  SELECT min(b) FROM unnest(dispatch_latency_buckets()) AS b WHERE seconds <= b
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
    LANGUAGE sql
    AS $$
  WITH added AS (
  INSERT INTO dispatch_scope_observations (scope, kind, outcome, le, observations, seconds)
  SELECT s, k, o, dispatch_latency_bucket(greatest(x, 0)), count(*), sum(greatest(x, 0))
    FROM unnest(scopes, kinds, outcomes, secs) AS u(s, k, o, x)
   GROUP BY 1, 2, 3, 4
  )
  -- A data-modifying WITH runs to completion whether or not the outer query reads it.
  SELECT cardinality(scopes)
$$;

--
-- Name: FUNCTION dispatch_record_observations(scopes text[], kinds text[], outcomes text[], secs double precision[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_record_observations(scopes text[], kinds text[], outcomes text[], secs double precision[]) IS 'Appends observations (parallel arrays: scope, kind, outcome, seconds) to dispatch_scope_observations, one row per bucket touched; returns how many observations.';

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
    -- A pass already queued and not started will claim after we commit, or wait for us at the
    -- barrier: one more job would only cost a NOTIFY (measured: 3.1 k creates/s with, 5.4 k without).
    IF NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs j
                    WHERE j.is_available AND j.run_at <= now()
                      AND j.task_id = (SELECT t.id FROM graphile_worker._private_tasks t WHERE t.identifier = 'assignment:run')) THEN
      PERFORM graphile_worker.add_job('assignment:run', max_attempts := 3);
    END IF;
  END IF;
END $$;

--
-- Name: FUNCTION dispatch_request_assignment(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_request_assignment() IS 'Wakes an assigner unless one is already draining the queue (see migration 0002).';

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
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION dispatch_schedule_timeouts(task_ids uuid[], attempts integer[], run_ats timestamp with time zone[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_schedule_timeouts(task_ids uuid[], attempts integer[], run_ats timestamp with time zone[]) IS 'Creates or moves the timeout job of each given task to its deadline; returns how many.';

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

--
-- Name: FUNCTION dispatch_scope_counts_on_update(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_scope_counts_on_update() IS 'Statement trigger: applies the net change of open tasks per scope and status to dispatch_scope_counts, and records finishes, assignments and ended attempts in dispatch_scope_observations.';

--
-- Name: dispatch_sync_active_tasks(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_sync_active_tasks() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION dispatch_sync_active_tasks(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_sync_active_tasks() IS 'Statement trigger: applies the net change in active tasks per agent to dispatch_agents.active_tasks.';

--
-- Name: dispatch_sync_active_tasks_delete(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_sync_active_tasks_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  UPDATE dispatch_agents a SET active_tasks = greatest(a.active_tasks - d.n, 0)
    FROM (SELECT assignee, count(*)::integer AS n FROM old_rows
           WHERE status IN ('assigned', 'running') AND assignee IS NOT NULL GROUP BY assignee) d
   WHERE a.name = d.assignee;
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
-- Name: dispatch_tasks_wake_on_insert(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispatch_tasks_wake_on_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  -- Tasks marked unmatched on insert have nobody to go to: only the others need an assigner.
  IF EXISTS (SELECT 1 FROM new_rows WHERE status = 'pending' AND unmatched_at IS NULL) THEN
    PERFORM dispatch_request_assignment();
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
  later timestamptz;
BEGIN
  -- Tasks that came back to pending (retry, reassignment, failed wake): ready now, or after backoff.
  IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o USING (id)
              WHERE n.status = 'pending' AND o.status <> 'pending'
                AND (n.not_before IS NULL OR n.not_before <= now())) THEN
    PERFORM dispatch_request_assignment();
  END IF;
  SELECT min(n.not_before) INTO later FROM new_rows n JOIN old_rows o USING (id)
   WHERE n.status = 'pending' AND o.status <> 'pending' AND n.not_before > now();
  IF later IS NOT NULL THEN
    PERFORM dispatch_request_assignment_at(later);
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
    LANGUAGE sql
    AS $$
  -- A job already running (locked) is left alone: it re-checks the attempt and does nothing.
  -- (The parameter is not called task_id: graphile's jobs table has a column of that name.)
  WITH removed AS (
    DELETE FROM graphile_worker._private_jobs WHERE key = 'timeout:' || timed_task::text AND locked_at IS NULL RETURNING 1
  )
  SELECT count(*)::integer FROM removed;
$$;

--
-- Name: FUNCTION dispatch_unschedule_timeout(timed_task uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.dispatch_unschedule_timeout(timed_task uuid) IS 'Removes the timeout job of a task that finished or left its agent; returns how many jobs it removed.';

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

COMMENT ON COLUMN public.dispatch_agents.active_tasks IS 'Tasks assigned or running on this agent right now (kept exact by trigger on dispatch_tasks).';

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
-- Name: dispatch_agent_load; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.dispatch_agent_load AS
 SELECT dispatch_agents.name,
    dispatch_agents.status,
    dispatch_agents.drained,
    dispatch_agents.active_tasks,
    dispatch_agents.max_concurrent,
    dispatch_agents.capabilities,
    dispatch_agents.last_seen_at,
    dispatch_agents.last_assigned_at
   FROM public.dispatch_agents;

--
-- Name: VIEW dispatch_agent_load; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.dispatch_agent_load IS 'Each agent with its live load; max_concurrent null means the configured default.';

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

COMMENT ON TABLE public.dispatch_event_outbox IS 'Task events committed but not yet acknowledged by JetStream; the publisher deletes each id after the acknowledgement.';

--
-- Name: COLUMN dispatch_event_outbox.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_event_outbox.id IS 'dispatch_task_events.id of the owed event; publication follows this order.';

--
-- Name: COLUMN dispatch_event_outbox.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_event_outbox.created_at IS 'When the event was queued; the oldest gives the publication lag.';

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
    CONSTRAINT dispatch_tasks_active_has_assignee CHECK (((status <> ALL (ARRAY['assigned'::text, 'running'::text])) OR ((assignee IS NOT NULL) AND (assigned_at IS NOT NULL)))),
    CONSTRAINT dispatch_tasks_attempt_check CHECK ((attempt >= 0)),
    CONSTRAINT dispatch_tasks_heartbeat_timeout_ms_check CHECK ((heartbeat_timeout_ms > 0)),
    CONSTRAINT dispatch_tasks_idempotency_key_check CHECK (((length(idempotency_key) >= 1) AND (length(idempotency_key) <= 200))),
    CONSTRAINT dispatch_tasks_max_retries_check CHECK ((max_retries >= 0)),
    CONSTRAINT dispatch_tasks_priority_check CHECK (((priority >= 1) AND (priority <= 5))),
    CONSTRAINT dispatch_tasks_reassign_count_check CHECK ((reassign_count >= 0)),
    CONSTRAINT dispatch_tasks_requester_check CHECK (((length(requester) >= 1) AND (length(requester) <= 200))),
    CONSTRAINT dispatch_tasks_retries_within_budget CHECK ((retry_count <= max_retries)),
    CONSTRAINT dispatch_tasks_retry_count_check CHECK ((retry_count >= 0)),
    CONSTRAINT dispatch_tasks_scope_check CHECK ((((length(scope) >= 1) AND (length(scope) <= 200)) AND (scope = lower(scope)))),
    CONSTRAINT dispatch_tasks_start_timeout_ms_check CHECK ((start_timeout_ms > 0)),
    CONSTRAINT dispatch_tasks_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'assigned'::text, 'running'::text, 'completed'::text, 'failed'::text, 'cancelled'::text, 'timeout'::text]))),
    CONSTRAINT dispatch_tasks_terminal_is_stamped CHECK (((status <> ALL (ARRAY['completed'::text, 'failed'::text, 'cancelled'::text, 'timeout'::text])) OR (completed_at IS NOT NULL))),
    CONSTRAINT dispatch_tasks_timeout_ms_check CHECK ((timeout_ms > 0)),
    CONSTRAINT dispatch_tasks_title_check CHECK (((length(title) >= 1) AND (length(title) <= 500)))
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

COMMENT ON COLUMN public.dispatch_tasks.priority IS '1 (most urgent) to 5; pending work is taken in priority order, then oldest first.';

--
-- Name: COLUMN dispatch_tasks.status; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_tasks.status IS 'pending, assigned, running (terminal: completed, failed, cancelled, timeout).';

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

COMMENT ON COLUMN public.dispatch_tasks.not_before IS 'Retry backoff: a pending task is not assigned before this instant.';

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
    min(dispatch_tasks.created_at) AS oldest_created_at
   FROM public.dispatch_tasks
  WHERE (dispatch_tasks.status = ANY (ARRAY['pending'::text, 'assigned'::text, 'running'::text]))
  GROUP BY dispatch_tasks.scope, dispatch_tasks.status;

--
-- Name: VIEW dispatch_queue_depth; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.dispatch_queue_depth IS 'Open work by scope and status, with the age of the oldest task.';

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
-- Name: dispatch_scope_counts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispatch_scope_counts (
    scope text NOT NULL,
    status text NOT NULL,
    tasks bigint NOT NULL,
    CONSTRAINT dispatch_scope_counts_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'assigned'::text, 'running'::text])))
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

COMMENT ON COLUMN public.dispatch_scope_counts.status IS 'pending, assigned or running.';

--
-- Name: COLUMN dispatch_scope_counts.tasks; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispatch_scope_counts.tasks IS 'A change in the number of tasks of this scope in this status (negative when they left it); summed per key.';

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
-- Name: dispatch_tasks dispatch_tasks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_tasks
    ADD CONSTRAINT dispatch_tasks_pkey PRIMARY KEY (id);

--
-- Name: dispatch_credentials_agent; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_credentials_agent ON public.dispatch_credentials USING btree (agent_id, created_at);

--
-- Name: dispatch_scope_counts_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_scope_counts_key ON public.dispatch_scope_counts USING btree (scope, status);

--
-- Name: dispatch_scope_observations_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_scope_observations_key ON public.dispatch_scope_observations USING btree (scope, kind, outcome, le);

--
-- Name: dispatch_task_events_task_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_task_events_task_idx ON public.dispatch_task_events USING btree (task_id, id);

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
-- Name: dispatch_tasks_idempotency_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX dispatch_tasks_idempotency_idx ON public.dispatch_tasks USING btree (requester, idempotency_key) WHERE (idempotency_key IS NOT NULL);

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
-- Name: dispatch_tasks_pending_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_pending_idx ON public.dispatch_tasks USING btree (priority, created_at, id) INCLUDE (scope) WHERE (status = 'pending'::text);

--
-- Name: dispatch_tasks_requester_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_requester_idx ON public.dispatch_tasks USING btree (requester, created_at DESC, id DESC);

--
-- Name: dispatch_tasks_start_alarm_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_start_alarm_idx ON public.dispatch_tasks USING btree (created_at) WHERE ((status = 'pending'::text) AND (start_timeout_ms IS NOT NULL) AND (start_alarm_at IS NULL));

--
-- Name: dispatch_tasks_unmarked_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispatch_tasks_unmarked_idx ON public.dispatch_tasks USING btree (scope) WHERE ((status = 'pending'::text) AND (unmatched_at IS NULL));

--
-- Name: INDEX dispatch_tasks_unmarked_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.dispatch_tasks_unmarked_idx IS 'Pending tasks whose unmatched event is not yet recorded, by scope: the unmatched pass probes it once per scope.';

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

CREATE TRIGGER dispatch_agents_wake_on_update AFTER UPDATE ON public.dispatch_agents FOR EACH ROW WHEN (((new.status = ANY (ARRAY['ready'::text, 'sleeping'::text, 'busy'::text])) AND (NOT new.drained) AND ((old.status IS DISTINCT FROM new.status) OR old.drained OR (new.active_tasks < old.active_tasks) OR (old.capabilities IS DISTINCT FROM new.capabilities) OR (old.max_concurrent IS DISTINCT FROM new.max_concurrent) OR ((old.avoid_until IS NOT NULL) AND (new.avoid_until IS NULL))))) EXECUTE FUNCTION public.dispatch_agents_wake();

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
-- Name: dispatch_tasks dispatch_tasks_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_touch BEFORE UPDATE ON public.dispatch_tasks FOR EACH ROW EXECUTE FUNCTION public.dispatch_touch_updated_at();

--
-- Name: dispatch_tasks dispatch_tasks_wake_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_wake_on_insert AFTER INSERT ON public.dispatch_tasks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_tasks_wake_on_insert();

--
-- Name: dispatch_tasks dispatch_tasks_wake_on_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER dispatch_tasks_wake_on_update AFTER UPDATE ON public.dispatch_tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.dispatch_tasks_wake_on_update();

--
-- Name: dispatch_event_outbox dispatch_event_outbox_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_event_outbox
    ADD CONSTRAINT dispatch_event_outbox_id_fkey FOREIGN KEY (id) REFERENCES public.dispatch_task_events(id) ON DELETE CASCADE;

--
-- Name: dispatch_task_events dispatch_task_events_task_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_task_events
    ADD CONSTRAINT dispatch_task_events_task_id_fkey FOREIGN KEY (task_id) REFERENCES public.dispatch_tasks(id) ON DELETE CASCADE;

--
-- Name: dispatch_tasks dispatch_tasks_parent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispatch_tasks
    ADD CONSTRAINT dispatch_tasks_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.dispatch_tasks(id) ON DELETE SET NULL;

--
-- PostgreSQL database dump complete
--
