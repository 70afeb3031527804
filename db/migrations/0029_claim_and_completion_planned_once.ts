import { type Kysely, sql } from 'kysely';

/**
 * An assignment batch's claim and a completion batch are planned once per session, as the batch's
 * write has been since migration 0026: each is now a PL/pgSQL function whose statement keeps its
 * plan, generic, with sequential scans off (migration 0027: a plan kept from a nearly empty table
 * must still find rows by key).
 *
 * Both statements were sent with their values as parameters and planned again for nearly every
 * call: the claim as an unnamed statement, the completion as a prepared one for which PostgreSQL
 * kept choosing custom plans (its generic plan's estimates, for arrays of unknown length, always
 * looked dearer). In the agent round trip benchmark at half its rate (584 batches and 950
 * completion statements in 10 s, pg_stat_statements with track_planning), planning the claim took
 * 362 ms against 95 ms to run it, and planning the completions 350 ms beside 1.9 s to run them:
 * together about 4% of the machine's two cores, on the server the assigner and the API share.
 *
 * dispatch_claim_pending_tasks(scopes, claim_limit, held_ahead, lock_controls) is the claim of
 * src/assignment/assignment.queries.ts: with lock_controls it first locks the rows of the
 * controlled scopes among `scopes` (paused or limited; returned as JSON in `controls` on every
 * row, and on one row of NULL task columns when nothing was claimed) and claims only the others;
 * without it, it claims tasks of all of `scopes` (a limited scope its caller already holds).
 * Its planner settings are its own (sorts, bitmap scans and JIT off, as the batch's first
 * statement sets them for the transaction: see claimPendingTasks), so its plan does not depend on
 * the statements before it. It is one statement, so it reads with one snapshot, as before.
 *
 * dispatch_complete_tasks(task_ids, agents, attempts, results) completes, in one statement, the
 * tasks still held by the given agent (and attempt, when given), each with its result, and adds
 * their `completed` events; it returns each completed task with its position in the input
 * (1-based).
 *
 * Added beside the statements they replace, which a replica of the previous version keeps
 * sending during a rolling upgrade. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE FUNCTION dispatch_claim_pending_tasks(scopes text[], claim_limit integer, held_ahead integer, lock_controls boolean)
  RETURNS TABLE (id uuid, scope text, priority smallint, avoid_agent text, ready_at timestamptz, rank timestamptz, controls json)
  LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off
  SET enable_sort = off
  SET enable_bitmapscan = off
  SET jit = off
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

CREATE FUNCTION dispatch_complete_tasks(task_ids uuid[], agents text[], attempts integer[], results jsonb[])
  RETURNS TABLE (input bigint, task dispatch_tasks)
  LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off
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

COMMENT ON FUNCTION dispatch_claim_pending_tasks(text[], integer, integer, boolean) IS 'An assignment batch''s claim: the next pending tasks of scopes, in rank order, at most claim_limit, locked (SKIP LOCKED). With lock_controls, first locks the rows of the controlled scopes among scopes (returned as JSON in controls on every row; one row of NULL task columns when nothing was claimed) and claims only the others. PL/pgSQL so that a session plans it once (migration 0029).';
COMMENT ON FUNCTION dispatch_complete_tasks(uuid[], text[], integer[], jsonb[]) IS 'A completion batch: completes each task still held by its agent (and attempt, when not NULL) with its result, adds its completed event, and returns it with its position in the input (1-based). PL/pgSQL so that a session plans it once (migration 0029).';
`,
    )
    .execute(db);
}
