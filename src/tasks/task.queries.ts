import { sql } from 'kysely';
import type { Db, TaskEventRow, TaskRow } from '../db/database.js';
import { newId } from '../db/ids.js';
import type { TaskStatus } from '../db/columns.js';

/**
 * The task state machine in SQL. Every transition is one statement that names the states it
 * leaves (and, for worker calls, the assignee and attempt it expects): if another replica, a
 * timeout or a cancel got there first, it touches no row and the caller reports 409 instead of
 * overwriting. Each statement writes its audit event in the same statement, so the two commit
 * together.
 */

export interface NewTask {
  requester: string;
  title: string;
  description: string | null;
  scope: string;
  priority: number;
  context: unknown;
  timeout_ms: number;
  heartbeat_timeout_ms: number | null;
  start_timeout_ms: number | null;
  max_retries: number;
  parent_id: string | null;
  idempotency_key: string | null;
}

const json = (value: unknown) => (value === undefined || value === null ? null : JSON.stringify(value));

/**
 * Inserts tasks and their `created` events in one statement (ids are chosen by the caller, so each
 * row returned can be matched to its request). A task whose requester already used its idempotency
 * key is skipped, so only the rows actually inserted come back. A task whose scope no agent serves
 * is recorded `unmatched` right here, event included (migration 0005), rather than by a later
 * update of the row.
 */
export async function insertTasks(db: Db, tasks: ReadonlyArray<NewTask & { id: string }>): Promise<TaskRow[]> {
  const rows = JSON.stringify(
    tasks.map((t) => ({
      id: t.id,
      requester: t.requester,
      title: t.title,
      description: t.description,
      scope: t.scope,
      priority: t.priority,
      // JSON null becomes SQL NULL in jsonb_to_recordset, as json() gives for a single row.
      context: t.context ?? null,
      timeout_ms: t.timeout_ms,
      heartbeat_timeout_ms: t.heartbeat_timeout_ms,
      start_timeout_ms: t.start_timeout_ms,
      max_retries: t.max_retries,
      parent_id: t.parent_id,
      idempotency_key: t.idempotency_key,
    })),
  );
  const result = await sql<TaskRow>`
    WITH capable AS (
      SELECT array_agg(scope) AS scopes FROM dispatch_capable_scopes
    ), t AS (
      INSERT INTO dispatch_tasks (id, requester, title, description, scope, priority, context, timeout_ms,
                                  heartbeat_timeout_ms, start_timeout_ms, max_retries, parent_id, idempotency_key,
                                  unmatched_at)
      SELECT id, requester, title, description, scope, priority, context, timeout_ms,
             heartbeat_timeout_ms, start_timeout_ms, max_retries, parent_id, idempotency_key,
             CASE WHEN scope = ANY ((SELECT scopes FROM capable)::text[]) THEN NULL ELSE now() END
        FROM jsonb_to_recordset(${rows}::jsonb) AS x(
               id uuid, requester text, title text, description text, scope text, priority smallint, context jsonb,
               timeout_ms integer, heartbeat_timeout_ms integer, start_timeout_ms integer, max_retries integer,
               parent_id uuid, idempotency_key text)
      ON CONFLICT (requester, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING *
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'created', requester, 0,
             jsonb_build_object('task_id', id, 'requester', requester, 'scope', scope, 'priority', priority)
        FROM t
      -- Appended after every created event, so each task's events keep their order.
      UNION ALL
      SELECT id, 'unmatched', NULL, NULL, jsonb_build_object('task_id', id, 'scope', scope)
        FROM t WHERE unmatched_at IS NOT NULL
    )
    SELECT * FROM t`.execute(db);
  return result.rows;
}

/** Inserts one task and its `created` event; with an idempotency key already used, inserts nothing. */
export async function insertTask(db: Db, task: NewTask): Promise<TaskRow | undefined> {
  return (await insertTasks(db, [{ ...task, id: newId() }]))[0];
}

export async function findTaskByIdempotencyKey(db: Db, requester: string, key: string): Promise<TaskRow | undefined> {
  return await db
    .selectFrom('dispatch_tasks')
    .selectAll()
    .where('requester', '=', requester)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

/** Tasks by id, in no particular order; ids that name no task are left out. */
export async function findTasks(db: Db, ids: readonly string[]): Promise<TaskRow[]> {
  const { rows } = await sql<TaskRow>`SELECT * FROM dispatch_tasks WHERE id = ANY(${ids}::uuid[])`.execute(db);
  return rows;
}

export async function findTask(db: Db, id: string): Promise<TaskRow | undefined> {
  return await db.selectFrom('dispatch_tasks').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function taskExists(db: Db, id: string): Promise<boolean> {
  const row = await db.selectFrom('dispatch_tasks').select('id').where('id', '=', id).executeTakeFirst();
  return row !== undefined;
}

export interface TaskListFilter {
  status?: TaskStatus;
  requester?: string;
  assignee?: string;
  scope?: string;
  parent_id?: string;
  /** Only tasks this agent requested or holds now. */
  involving?: string;
  limit: number;
  /** The last row of the previous page; created_at as returned in `cursor_created_at`. */
  after?: { created_at: string; id: string };
}

/**
 * A listed task plus its created_at to the microsecond, for the next page's cursor: a JS Date
 * keeps only milliseconds, and a cursor rounded down to the millisecond skips every task created
 * in the same millisecond as the page's last one (all of them, for tasks inserted together).
 */
export type ListedTask = TaskRow & { cursor_created_at: string };

/** Newest first, keyset-paginated on (created_at, id) so deep pages cost the same as the first. */
export async function listTasks(db: Db, filter: TaskListFilter): Promise<ListedTask[]> {
  let query = db
    .selectFrom('dispatch_tasks')
    .selectAll()
    .select(sql<string>`to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('cursor_created_at'));
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.requester) query = query.where('requester', '=', filter.requester);
  if (filter.assignee) query = query.where('assignee', '=', filter.assignee);
  if (filter.scope) query = query.where('scope', '=', filter.scope);
  if (filter.parent_id) query = query.where('parent_id', '=', filter.parent_id);
  // A bitmap OR of the requester and assignee indexes, for callers who see only their own tasks.
  const involving = filter.involving;
  if (involving !== undefined) query = query.where((eb) => eb.or([eb('requester', '=', involving), eb('assignee', '=', involving)]));
  const after = filter.after;
  if (after) query = query.where(sql<boolean>`(created_at, id) < (${after.created_at}::timestamptz, ${after.id}::uuid)`);
  return await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
}

/** Whether `agent` held an attempt of the task, or requested its parent. */
export async function isHeldOrParentRequestedBy(db: Db, task: Pick<TaskRow, 'id' | 'parent_id'>, agent: string): Promise<boolean> {
  const { rows } = await sql<{ yes: boolean }>`
    SELECT EXISTS (SELECT 1 FROM dispatch_task_events WHERE task_id = ${task.id} AND event = 'assigned' AND agent_id = ${agent})
        OR EXISTS (SELECT 1 FROM dispatch_tasks WHERE id = ${task.parent_id} AND requester = ${agent}) AS yes`.execute(db);
  return rows[0]?.yes === true;
}

export async function listTaskEvents(db: Db, taskId: string): Promise<TaskEventRow[]> {
  return await db.selectFrom('dispatch_task_events').selectAll().where('task_id', '=', taskId).orderBy('id').execute();
}

/** Who may act on a task as its worker: the assignee of the current attempt. */
export interface WorkerCall {
  taskId: string;
  agent: string;
  /** Lease from the assignment; absent for v1 clients, which are matched to the current attempt. */
  attempt: number | undefined;
}

export async function completeTask(db: Db, call: WorkerCall, result: unknown): Promise<TaskRow | undefined> {
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      UPDATE dispatch_tasks
         SET status = 'completed', result = ${json(result)}::jsonb, completed_at = now(), deadline_at = NULL
       WHERE id = ${call.taskId} AND status IN ('assigned', 'running') AND assignee = ${call.agent}
         AND (${call.attempt ?? null}::integer IS NULL OR attempt = ${call.attempt ?? null}::integer)
      RETURNING *
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'completed', assignee, attempt, jsonb_build_object('task_id', id, 'result', result) FROM t
    ), j AS (
      SELECT dispatch_unschedule_timeout(id) AS n FROM t
    )
    -- Naming j in the output keeps the planner from dropping it (and its side effect).
    SELECT t.*, (SELECT sum(n) FROM j) AS timeout_jobs FROM t`.execute(db);
  return rows[0];
}

export interface RetryPolicy {
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/**
 * A failure with retries left (and not marked non-retryable) goes back to pending after a
 * backoff, remembering the agent so another one is preferred; otherwise the task is failed.
 */
export async function failTask(
  db: Db,
  call: WorkerCall,
  error: string,
  retryable: boolean,
  policy: RetryPolicy,
): Promise<TaskRow | undefined> {
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      UPDATE dispatch_tasks d
         SET status = CASE WHEN ${retryable}::boolean AND d.retry_count < d.max_retries THEN 'pending' ELSE 'failed' END,
             retry_count = CASE WHEN ${retryable}::boolean AND d.retry_count < d.max_retries THEN d.retry_count + 1 ELSE d.retry_count END,
             not_before = CASE WHEN ${retryable}::boolean AND d.retry_count < d.max_retries
                               THEN now() + dispatch_retry_delay(d.retry_count, ${policy.backoffBaseMs}, ${policy.backoffMaxMs})
                               ELSE NULL END,
             completed_at = CASE WHEN ${retryable}::boolean AND d.retry_count < d.max_retries THEN NULL ELSE now() END,
             error = ${error},
             avoid_agent = d.assignee,
             deadline_at = NULL
       WHERE d.id = ${call.taskId} AND d.status IN ('assigned', 'running') AND d.assignee = ${call.agent}
         AND (${call.attempt ?? null}::integer IS NULL OR d.attempt = ${call.attempt ?? null}::integer)
      RETURNING d.*
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, CASE WHEN status = 'pending' THEN 'fail_retry' ELSE 'failed' END, ${call.agent}::text, attempt,
             jsonb_build_object('task_id', id, 'error', error, 'retry_count', retry_count, 'max_retries', max_retries,
                                'retryable', ${retryable}::boolean)
        FROM t
    ), j AS (
      SELECT dispatch_unschedule_timeout(id) AS n FROM t
    )
    -- Naming j in the output keeps the planner from dropping it (and its side effect).
    SELECT t.*, (SELECT sum(n) FROM j) AS timeout_jobs FROM t`.execute(db);
  return rows[0];
}

/**
 * Progress moves an assigned task to running (stamping started_at), and pushes the deadline: the
 * execution deadline counts from the start, the heartbeat deadline from this report.
 */
export async function recordProgress(db: Db, call: WorkerCall, payload: unknown): Promise<TaskRow | undefined> {
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      UPDATE dispatch_tasks d
         SET status = 'running',
             started_at = coalesce(d.started_at, now()),
             last_progress_at = now(),
             deadline_at = dispatch_attempt_deadline(coalesce(d.started_at, now()), d.assigned_at, now(), d.timeout_ms, d.heartbeat_timeout_ms)
       WHERE d.id = ${call.taskId} AND d.status IN ('assigned', 'running') AND d.assignee = ${call.agent}
         AND (${call.attempt ?? null}::integer IS NULL OR d.attempt = ${call.attempt ?? null}::integer)
      RETURNING d.*
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'progress', assignee, attempt, ${json(payload)}::jsonb FROM t
    ), j AS (
      SELECT dispatch_schedule_timeouts(array_agg(id), array_agg(attempt), array_agg(deadline_at)) AS n FROM t
    )
    -- Naming j in the output keeps the planner from dropping it (and its side effect).
    SELECT t.*, (SELECT sum(n) FROM j) AS timeout_jobs FROM t`.execute(db);
  return rows[0];
}

/** Cancels a task that is not finished yet; an assigned agent's slot is freed by the same update. */
/**
 * Cancels an unfinished task and, when `context` is given, replaces its context in the same
 * statement: a PATCH carrying both is all or nothing.
 */
export async function cancelTask(db: Db, taskId: string, by: string, context?: { value: unknown }): Promise<TaskRow | undefined> {
  const replace = context !== undefined;
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      UPDATE dispatch_tasks
         SET status = 'cancelled', completed_at = now(), deadline_at = NULL,
             context = CASE WHEN ${replace}::boolean THEN ${json(context?.value ?? null)}::jsonb ELSE context END
       WHERE id = ${taskId} AND status IN ('pending', 'assigned', 'running')
      RETURNING *
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT t.id, ev.event, ${by}::text, t.attempt, ev.payload
        FROM t CROSS JOIN LATERAL (VALUES
               (1, 'context_updated', jsonb_build_object('task_id', t.id)),
               (2, 'cancelled', jsonb_build_object('task_id', t.id, 'cancelled_by', ${by}::text, 'assignee', t.assignee))
             ) AS ev(step, event, payload)
       WHERE ev.step = 2 OR ${replace}::boolean
       ORDER BY ev.step
    ), j AS (
      SELECT dispatch_unschedule_timeout(id) AS n FROM t
    )
    -- Naming j in the output keeps the planner from dropping it (and its side effect).
    SELECT t.*, (SELECT sum(n) FROM j) AS timeout_jobs FROM t`.execute(db);
  return rows[0];
}

/** Replaces the worker's input while the task is not finished. */
export async function replaceContext(db: Db, taskId: string, by: string, context: unknown): Promise<TaskRow | undefined> {
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      UPDATE dispatch_tasks SET context = ${json(context)}::jsonb
       WHERE id = ${taskId} AND status IN ('pending', 'assigned', 'running')
      RETURNING *
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'context_updated', ${by}::text, attempt, jsonb_build_object('task_id', id) FROM t
    )
    SELECT * FROM t`.execute(db);
  return rows[0];
}
