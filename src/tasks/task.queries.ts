import { sql, type RawBuilder } from 'kysely';
import type { Db, TaskEventRow, TaskRow } from '../db/database.js';
import { newId } from '../db/ids.js';
import { prepared } from '../db/prepared.js';
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
  /** W3C traceparent sent with the request, already checked (trace-context.ts). */
  traceparent?: string | null;
  /** Dependencies still open (migration 0013): above 0, the task starts `waiting` instead of pending. */
  waiting_on?: number;
  on_dependency_failure?: 'cancel' | 'run';
  /** Delayed task (migration 0012): not assigned before run_at (ISO 8601), or before creation + delay_ms. */
  run_at?: string | null;
  delay_ms?: number | null;
  /** Expiry: ends `timeout` (expired) if still pending at start_by, or schedule_to_start_timeout_ms after it became ready. */
  start_by?: string | null;
  schedule_to_start_timeout_ms?: number | null;
}

export const toJsonText = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));

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
      // JSON null becomes SQL NULL in jsonb_to_recordset, as toJsonText() gives for a single row.
      context: t.context ?? null,
      timeout_ms: t.timeout_ms,
      heartbeat_timeout_ms: t.heartbeat_timeout_ms,
      start_timeout_ms: t.start_timeout_ms,
      max_retries: t.max_retries,
      parent_id: t.parent_id,
      idempotency_key: t.idempotency_key,
      traceparent: t.traceparent ?? null,
      waiting_on: t.waiting_on ?? 0,
      on_dependency_failure: t.on_dependency_failure ?? 'cancel',
      run_at: t.run_at ?? null,
      delay_ms: t.delay_ms ?? null,
      start_by: t.start_by ?? null,
      schedule_to_start_timeout_ms: t.schedule_to_start_timeout_ms ?? null,
    })),
  );
  const result = await sql<TaskRow>`${prepared('insert_tasks')}
    WITH capable AS (
      SELECT array_agg(scope) AS scopes FROM dispatch_capable_scopes
    ), t AS (
      INSERT INTO dispatch_tasks (id, requester, title, description, scope, priority, context, timeout_ms,
                                  heartbeat_timeout_ms, start_timeout_ms, max_retries, parent_id, idempotency_key,
                                  traceparent, unmatched_at, status, waiting_on, on_dependency_failure,
                                  run_at, not_before, start_by, rank)
      SELECT id, requester, title, description, scope, priority, context, timeout_ms,
             heartbeat_timeout_ms, start_timeout_ms, max_retries, parent_id, idempotency_key,
             traceparent, CASE WHEN scope = ANY ((SELECT scopes FROM capable)::text[]) THEN NULL ELSE now() END,
             CASE WHEN waiting_on > 0 THEN 'waiting' ELSE 'pending' END, waiting_on, on_dependency_failure,
             -- Timing (migration 0012), on the database's clock: a delayed task waits on not_before
             -- like a retry; expiry counts from when it becomes ready; rank orders the claim (aging).
             r.run_at, r.run_at,
             coalesce(x.start_by, coalesce(r.run_at, now()) + make_interval(secs => x.schedule_to_start_timeout_ms / 1000.0)),
             dispatch_task_rank(coalesce(r.run_at, now()), priority)
        FROM jsonb_to_recordset(${rows}::jsonb) AS x(
               id uuid, requester text, title text, description text, scope text, priority smallint, context jsonb,
               timeout_ms integer, heartbeat_timeout_ms integer, start_timeout_ms integer, max_retries integer,
               parent_id uuid, idempotency_key text, traceparent text, waiting_on integer, on_dependency_failure text,
               run_at timestamptz, delay_ms bigint, start_by timestamptz, schedule_to_start_timeout_ms bigint)
        CROSS JOIN LATERAL (SELECT coalesce(x.run_at, now() + make_interval(secs => x.delay_ms / 1000.0)) AS run_at) AS r
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
  /** Only tasks this agent may read: it requested or holds them, held an earlier attempt, or requested their parent. */
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

/** The list's filters on the dispatch_tasks row aliased `t`. */
function listConditions(filter: TaskListFilter) {
  const conditions = [sql<boolean>`true`];
  if (filter.status) conditions.push(sql`t.status = ${filter.status}`);
  if (filter.requester) conditions.push(sql`t.requester = ${filter.requester}`);
  if (filter.assignee) conditions.push(sql`t.assignee = ${filter.assignee}`);
  if (filter.scope) conditions.push(sql`t.scope = ${filter.scope}`);
  if (filter.parent_id) conditions.push(sql`t.parent_id = ${filter.parent_id}::uuid`);
  return sql.join(conditions, sql` AND `);
}

/** Rows before the cursor in list order, compared on the given (created_at, id) columns. */
function beforeCursor(filter: TaskListFilter, createdAt: RawBuilder<unknown>, id: RawBuilder<unknown>) {
  const after = filter.after;
  return after ? sql<boolean>`(${createdAt}, ${id}) < (${after.created_at}::timestamptz, ${after.id}::uuid)` : sql<boolean>`true`;
}

/**
 * Newest first, keyset-paginated on (created_at, id) so deep pages cost the same as the first.
 * A caller that reads only its own tasks (`involving`) reads them three ways, each walked on its
 * own index in list order and cut at the page size: as requester, as current assignee, and as a
 * reader of dispatch_task_readers (an earlier attempt's holder, the parent's requester); the page
 * is the newest of the three together.
 */
export async function listTasks(db: Db, filter: TaskListFilter): Promise<ListedTask[]> {
  const where = listConditions(filter);
  const page = sql`ORDER BY t.created_at DESC, t.id DESC LIMIT ${filter.limit}`;
  const inList = beforeCursor(filter, sql`t.created_at`, sql`t.id`);
  const me = filter.involving;
  const from =
    me === undefined
      ? sql`dispatch_tasks t`
      : sql`(
          SELECT id FROM (SELECT t.id FROM dispatch_tasks t WHERE t.requester = ${me} AND ${where} AND ${inList} ${page}) requested
          UNION
          SELECT id FROM (SELECT t.id FROM dispatch_tasks t WHERE t.assignee = ${me} AND ${where} AND ${inList} ${page}) held
          UNION
          SELECT id FROM (
            SELECT r.task_id AS id FROM dispatch_task_readers r JOIN dispatch_tasks t ON t.id = r.task_id
             WHERE r.reader = ${me} AND ${where} AND ${beforeCursor(filter, sql`r.task_created_at`, sql`r.task_id`)}
             ORDER BY r.task_created_at DESC, r.task_id DESC LIMIT ${filter.limit}) readable
        ) mine JOIN dispatch_tasks t ON t.id = mine.id`;
  const { rows } = await sql<ListedTask>`
    SELECT t.*, to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_created_at
      FROM ${from}
     WHERE ${where} AND ${inList}
     ${page}`.execute(db);
  return rows;
}

/**
 * Of `ids`, the tasks `agent` may read without reading every task: it requested or holds it, held
 * an attempt of it, requested its parent, or is the assignee of a task that depends on it (to
 * read its dependencies' results). One statement for any number of ids.
 */
export async function tasksVisibleTo(db: Db, ids: readonly string[], agent: string): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    SELECT t.id FROM dispatch_tasks t
     WHERE t.id = ANY(${ids}::uuid[])
       AND (t.requester = ${agent} OR t.assignee = ${agent}
            OR EXISTS (SELECT 1 FROM dispatch_task_readers WHERE task_id = t.id AND reader = ${agent})
            OR EXISTS (SELECT 1 FROM dispatch_task_dependencies d JOIN dispatch_tasks w ON w.id = d.task_id
                        WHERE d.depends_on_id = t.id AND w.assignee = ${agent}))`.execute(db);
  return rows.map((row) => row.id);
}

export async function listTaskEvents(db: Db, taskId: string): Promise<TaskEventRow[]> {
  return await db.selectFrom('dispatch_task_events').selectAll().where('task_id', '=', taskId).orderBy('id').execute();
}

/** Who may act on a task as its worker: the assignee of the current attempt. */
/** The newest audit event's id (one probe of the primary key): it moves whenever any task changes. */
export async function latestTaskEventId(db: Db): Promise<string | null> {
  const row = await db.selectFrom('dispatch_task_events').select('id').orderBy('id', 'desc').limit(1).executeTakeFirst();
  return row ? String(row.id) : null;
}

export interface WorkerCall {
  taskId: string;
  agent: string;
  /** Lease from the assignment; absent for v1 clients, which are matched to the current attempt. */
  attempt: number | undefined;
}

export interface Completion {
  call: WorkerCall;
  /** The result as JSON text (null for none), serialised once: the batcher weighs it too. */
  resultJson: string | null;
}

/**
 * Completes tasks in one statement: the group commit of completions (src/tasks/task.batcher.ts).
 * Returns, per completion in order, the task it completed, or undefined where it did not apply
 * (not the assignee, another attempt, no longer active, or the same task completed by another entry
 * of the batch).
 *
 * The agents' rows are not written: the active-task trigger counts the finished tasks in
 * dispatch_agent_releases (migration 0022), so a completion never waits for an assignment batch
 * holding its agent's row.
 *
 * The tasks are found by primary key (as the assigner's write finds them): with the status test
 * written plainly, statistics from a quieter hour made the planner read every active task through
 * the partial index on them to complete a few (test/integration/assignment.plans.test.ts).
 */
export async function completeTasks(db: Db, completions: readonly Completion[]): Promise<Array<TaskRow | undefined>> {
  // dispatch_complete_tasks (migration 0029) is planned once per session: as a prepared statement
  // of its own, PostgreSQL kept planning it anew for nearly every batch (its generic plan, for
  // arrays of unknown length, always looked dearer than a custom one).
  const { rows } = await sql<TaskRow & { input: string }>`${prepared('complete_tasks')}
    SELECT c.input, (c.task).* FROM dispatch_complete_tasks(
      ${completions.map((c) => c.call.taskId)}::uuid[], ${completions.map((c) => c.call.agent)}::text[],
      ${completions.map((c) => c.call.attempt ?? null)}::integer[], ${completions.map((c) => c.resultJson)}::jsonb[]) AS c`.execute(db);
  const byInput = new Map(rows.map(({ input, ...task }) => [Number(input), task as TaskRow]));
  return completions.map((_, i) => byInput.get(i + 1));
}

export async function completeTask(db: Db, call: WorkerCall, result: unknown): Promise<TaskRow | undefined> {
  return (await completeTasks(db, [{ call, resultJson: toJsonText(result) }]))[0];
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
  const { rows } = await sql<TaskRow>`${prepared('fail_task')}
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
    )
    SELECT * FROM t`.execute(db);
  return rows[0];
}

/**
 * Progress moves an assigned task to running (stamping started_at), and pushes the deadline: the
 * execution deadline counts from the start, the heartbeat deadline from this report. Both only
 * ever move later, so the due timer, armed for the old deadline at the latest, needs no notice: it
 * finds nothing due then and arms for the new one.
 */
export async function recordProgress(db: Db, call: WorkerCall, payload: unknown): Promise<TaskRow | undefined> {
  const { rows } = await sql<TaskRow>`${prepared('record_progress')}
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
      SELECT id, 'progress', assignee, attempt, ${toJsonText(payload)}::jsonb FROM t
    )
    SELECT * FROM t`.execute(db);
  return rows[0];
}

/**
 * Cancels the unfinished tasks among `ids`; an assigned agent's slot is freed by the same update.
 * When `context` is given it replaces their context in the same statement: a PATCH carrying both
 * is all or nothing. Finished tasks are left alone and not returned.
 */
export async function cancelTasks(db: Db, ids: readonly string[], by: string, context?: { value: unknown }): Promise<TaskRow[]> {
  const replace = context !== undefined;
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      UPDATE dispatch_tasks
         SET status = 'cancelled', completed_at = now(), deadline_at = NULL,
             context = CASE WHEN ${replace}::boolean THEN ${toJsonText(context?.value ?? null)}::jsonb ELSE context END
       WHERE id = ANY (${ids}::uuid[]) AND status IN ('waiting', 'pending', 'assigned', 'running')
      RETURNING *
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT t.id, ev.event, ${by}::text, t.attempt, ev.payload
        FROM t CROSS JOIN LATERAL (VALUES
               (1, 'context_updated', jsonb_build_object('task_id', t.id)),
               (2, 'cancelled', jsonb_build_object('task_id', t.id, 'cancelled_by', ${by}::text, 'assignee', t.assignee))
             ) AS ev(step, event, payload)
       WHERE ev.step = 2 OR ${replace}::boolean
       ORDER BY t.id, ev.step
    )
    SELECT * FROM t`.execute(db);
  return rows;
}

/** Replaces the worker's input while the task is not finished. */
export async function replaceContext(db: Db, taskId: string, by: string, context: unknown): Promise<TaskRow | undefined> {
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      UPDATE dispatch_tasks SET context = ${toJsonText(context)}::jsonb
       WHERE id = ${taskId} AND status IN ('waiting', 'pending', 'assigned', 'running')
      RETURNING *
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'context_updated', ${by}::text, attempt, jsonb_build_object('task_id', id) FROM t
    )
    SELECT * FROM t`.execute(db);
  return rows[0];
}
