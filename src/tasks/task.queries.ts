import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { TaskEventRow, TaskRow, TaskStatus } from '../db/schema.js';

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

/** Inserts a task and its `created` event; with an idempotency key already used, inserts nothing. */
export async function insertTask(db: Db, task: NewTask): Promise<TaskRow | undefined> {
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      INSERT INTO dispatch_tasks (requester, title, description, scope, priority, context, timeout_ms,
                                  heartbeat_timeout_ms, start_timeout_ms, max_retries, parent_id, idempotency_key)
      VALUES (${task.requester}, ${task.title}, ${task.description}, ${task.scope}, ${task.priority},
              ${json(task.context)}::jsonb, ${task.timeout_ms}, ${task.heartbeat_timeout_ms}, ${task.start_timeout_ms},
              ${task.max_retries}, ${task.parent_id}, ${task.idempotency_key})
      ON CONFLICT (requester, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING *
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'created', requester, 0,
             jsonb_build_object('task_id', id, 'requester', requester, 'scope', scope, 'priority', priority)
        FROM t
    )
    SELECT * FROM t`.execute(db);
  return rows[0];
}

export async function findTaskByIdempotencyKey(db: Db, requester: string, key: string): Promise<TaskRow | undefined> {
  return await db
    .selectFrom('dispatch_tasks')
    .selectAll()
    .where('requester', '=', requester)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
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
  limit: number;
  after?: { created_at: Date; id: string };
}

/** Newest first, keyset-paginated on (created_at, id) so deep pages cost the same as the first. */
export async function listTasks(db: Db, filter: TaskListFilter): Promise<TaskRow[]> {
  let query = db.selectFrom('dispatch_tasks').selectAll();
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.requester) query = query.where('requester', '=', filter.requester);
  if (filter.assignee) query = query.where('assignee', '=', filter.assignee);
  if (filter.scope) query = query.where('scope', '=', filter.scope);
  if (filter.parent_id) query = query.where('parent_id', '=', filter.parent_id);
  const after = filter.after;
  if (after) {
    query = query.where(({ eb, refTuple, tuple }) =>
      eb(refTuple('created_at', 'id'), '<', tuple(after.created_at, after.id)),
    );
  }
  return await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
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
export async function cancelTask(db: Db, taskId: string, by: string): Promise<TaskRow | undefined> {
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      UPDATE dispatch_tasks
         SET status = 'cancelled', completed_at = now(), deadline_at = NULL
       WHERE id = ${taskId} AND status IN ('pending', 'assigned', 'running')
      RETURNING *
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'cancelled', ${by}::text, attempt, jsonb_build_object('task_id', id, 'cancelled_by', ${by}::text, 'assignee', assignee) FROM t
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
