import type { Db } from '../db/database.js';
import type { TaskRow } from '../db/database.js';
import { hasRole, readsEverything, type Caller } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';
import { parseJsonInput } from '../domain/json-input.js';
import type { Metrics } from '../observability/metrics.js';
import { NO_TRACING, type Tracer } from '../observability/tracing.js';
import { createTaskSchema, uuidSchema, type CreateTaskInput, type ListTasksQuery } from './task.schemas.js';
import { completeTaskBatched, findTaskBatched, insertTaskBatched } from './task.batcher.js';
import * as q from './task.queries.js';
import { insertDependencies, lockDependencies } from './dependencies.queries.js';
import { TERMINAL_STATUSES, type TaskStatus } from '../db/columns.js';
import { retryTransientConflicts } from '../db/retry.js';

export interface TaskPolicy {
  defaultTimeoutMs: number;
  defaultStartTimeoutMs: number | null;
  retry: q.RetryPolicy;
}

export interface CreateOutcome {
  task: TaskRow;
  /** True when an Idempotency-Key matched an earlier request and no task was created. */
  replayed: boolean;
  /** Whether the request named dependencies (depends_on). */
  hasDependencies: boolean;
}

/** Who asks for a task: its requester, and whether that caller reads every task (admins, header mode). */
export interface Submitter {
  requester: string;
  readsAllTasks: boolean;
}

const isTerminal = (status: TaskStatus) => (TERMINAL_STATUSES as readonly string[]).includes(status);

/**
 * Inserts a task that depends on others, with its edges, in one transaction: the dependencies are
 * locked FOR SHARE first, so none ends unseen before the edges exist. Each must exist and be
 * readable by the submitter (the same 404-like answer for both, so ids of others' tasks are not
 * confirmed); one that already failed, was cancelled or timed out refuses a task whose policy
 * is cancel, since it could never run. Completed ones count as met.
 */
async function insertDependentTask(db: Db, task: q.NewTask, dependsOn: readonly string[], submitter: Submitter): Promise<TaskRow | undefined> {
  const run = async (tx: Db) => {
    const found = new Map((await lockDependencies(tx, dependsOn)).map((dep) => [dep.id, dep.status]));
    const visible = submitter.readsAllTasks ? new Set(found.keys()) : new Set(await q.tasksVisibleTo(tx, dependsOn, submitter.requester));
    const details = dependsOn.flatMap((id, i) => (visible.has(id) ? [] : [{ field: `depends_on.${i}`, message: 'no task with this id' }]));
    if (details.length > 0) throw new DispatchError('validation_failed', 'invalid request body: depends_on', details);
    if (task.on_dependency_failure !== 'run') {
      const failed = dependsOn.flatMap((id, i) => {
        const status = found.get(id) as TaskStatus;
        return isTerminal(status) && status !== 'completed'
          ? [{ field: `depends_on.${i}`, message: `task ${id} already ended ${status}; with on_dependency_failure "cancel" this task could never run` }]
          : [];
      });
      if (failed.length > 0) throw new DispatchError('conflict', 'a dependency already ended without completing', failed);
    }
    const open = dependsOn.filter((id) => !isTerminal(found.get(id) as TaskStatus)).length;
    const inserted = await q.insertTask(tx, { ...task, waiting_on: open });
    if (inserted) await insertDependencies(tx, inserted.id, dependsOn);
    return inserted;
  };
  return db.isTransaction ? await run(db) : await db.transaction().execute(run);
}

async function createTask(
  db: Db,
  policy: TaskPolicy,
  submitter: Submitter,
  input: CreateTaskInput,
  request: TaskRequest,
): Promise<CreateOutcome> {
  const requester = submitter.requester;
  if (input.parent_id && !(await q.taskExists(db, input.parent_id))) {
    throw new DispatchError('validation_failed', 'invalid request body: parent_id', [
      { field: 'parent_id', message: 'no task with this id' },
    ]);
  }
  const newTask: q.NewTask = {
    requester,
    title: input.title,
    description: input.description ?? null,
    scope: input.scope,
    priority: input.priority,
    context: input.context ?? null,
    timeout_ms: input.timeout_ms ?? policy.defaultTimeoutMs,
    heartbeat_timeout_ms: input.heartbeat_timeout_ms ?? null,
    start_timeout_ms: input.start_timeout_ms ?? policy.defaultStartTimeoutMs,
    max_retries: input.max_retries,
    parent_id: input.parent_id ?? null,
    idempotency_key: request.idempotencyKey ?? null,
    traceparent: request.traceparent ?? null,
    on_dependency_failure: input.on_dependency_failure,
    run_at: input.run_at ?? null,
    delay_ms: input.delay_ms ?? null,
    start_by: input.start_by ?? null,
    schedule_to_start_timeout_ms: input.schedule_to_start_timeout_ms ?? null,
  };
  const dependsOn = input.depends_on ?? [];
  // Inside a caller's transaction the row must go through that transaction, alone; so must a
  // task with dependencies, which locks them.
  const inserted =
    dependsOn.length > 0
      ? await insertDependentTask(db, newTask, dependsOn, submitter)
      : db.isTransaction
        ? await q.insertTask(db, newTask)
        : await insertTaskBatched(db, newTask);
  const hasDependencies = dependsOn.length > 0;
  if (inserted) return { task: inserted, replayed: false, hasDependencies };
  // ON CONFLICT DO NOTHING returned nothing: the key was used before by this requester.
  const key = request.idempotencyKey;
  const existing = key ? await q.findTaskByIdempotencyKey(db, requester, key) : undefined;
  if (!existing) throw new DispatchError('conflict', 'task could not be created; retry the request');
  return { task: existing, replayed: true, hasDependencies };
}

/** What creating a task needs, whichever way the request came in. */
export interface TaskIntake {
  db: Db;
  policy: TaskPolicy;
  metrics: Pick<Metrics, 'taskTransitions'>;
  /** swarm.task.request only (hermes.requesters): the requesters it accepts; empty, any. */
  allowedRequesters?: readonly string[];
  /** Spans for traced tasks; none when left out. */
  tracer?: Tracer;
}

/** What came with the body of a create request. */
export interface TaskRequest {
  /** The agent REST authenticated; a NATS request has none and names its requester in the body. */
  caller?: string;
  idempotencyKey?: string | null;
  /** The credential's scopes: a requester limited to some may create tasks only in those. */
  scopes?: readonly string[];
  /** W3C traceparent header, already checked (trace-context.ts). */
  traceparent?: string | null;
  /** The REST caller reads every task (admins, observers, header mode), so it may depend on any task. */
  readsAllTasks?: boolean;
  /** When the request arrived (epoch ms), for the create span. */
  receivedAtMs?: number;
}

/**
 * The one way in for a new task, from POST /api/v1/tasks and from `swarm.task.request`: validates
 * the JSON text, settles the requester, creates the task (or finds the one its idempotency key
 * made) and counts it. A DispatchError means the request is at fault.
 */
export async function submitTask(intake: TaskIntake, text: string, request: TaskRequest = {}): Promise<CreateOutcome> {
  const { caller, scopes = [] } = request;
  const input = parseJsonInput(text, createTaskSchema);
  if (scopes.length > 0 && !scopes.includes(input.scope)) {
    throw new DispatchError('forbidden', `this credential may create tasks only in the scopes ${scopes.join(', ')}`, [
      { field: 'scope', message: `not one of this credential's scopes: ${scopes.join(', ')}` },
    ]);
  }
  if (caller !== undefined && input.requester !== undefined && input.requester !== caller) {
    throw new DispatchError('validation_failed', 'invalid request body: requester', [
      { field: 'requester', message: 'must equal X-Agent-ID (or be left out)' },
    ]);
  }
  const requester = caller ?? input.requester;
  if (requester === undefined) {
    throw new DispatchError('validation_failed', 'invalid request body: requester', [
      { field: 'requester', message: 'required: the agent asking for the task' },
    ]);
  }
  const allowed = intake.allowedRequesters ?? [];
  if (allowed.length > 0 && !allowed.includes(requester)) {
    throw new DispatchError('forbidden', `requester ${requester} may not ask for tasks here`, [
      { field: 'requester', message: 'not among the requesters this Dispatch accepts (hermes.requesters)' },
    ]);
  }
  const outcome = await createTask(intake.db, intake.policy, { requester, readsAllTasks: caller !== undefined && (request.readsAllTasks ?? false) }, input, request);
  if (!outcome.replayed) {
    intake.metrics.taskTransitions.inc({ event: 'created' });
    if (outcome.task.unmatched_at) intake.metrics.taskTransitions.inc({ event: 'unmatched' });
    (intake.tracer ?? NO_TRACING).created(outcome.task, request.receivedAtMs ?? Date.now());
  }
  return outcome;
}

export async function getTask(db: Db, id: string): Promise<TaskRow> {
  const task = db.isTransaction ? await q.findTask(db, id) : await findTaskBatched(db, id);
  if (!task) throw new DispatchError('not_found', `task ${id} not found`);
  return task;
}

/**
 * A task as `caller` may see it: observers and admins see every task; anyone else only a task it
 * requested, holds or held (any attempt), whose parent it requested, or that a task it holds
 * depends on. To anyone else it does
 * not exist (404, the same answer as for an unknown id).
 */
export async function getVisibleTask(db: Db, id: string, caller: Caller): Promise<TaskRow> {
  const task = await getTask(db, id);
  if (readsEverything(caller) || task.requester === caller.agent || task.assignee === caller.agent) return task;
  if ((await q.tasksVisibleTo(db, [id], caller.agent)).length > 0) return task;
  throw new DispatchError('not_found', `task ${id} not found`);
}

interface Cursor {
  /** ISO 8601 in UTC with up to microseconds, as PostgreSQL stores it. */
  created_at: string;
  id: string;
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

export function encodeCursor(task: q.ListedTask): string {
  return Buffer.from(JSON.stringify([task.cursor_created_at, task.id])).toString('base64url');
}

function decodeCursor(cursor: string): Cursor {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    if (typeof createdAt !== 'string' || !CURSOR_TIME.test(createdAt)) throw new Error('bad cursor');
    const created_at = new Date(createdAt);
    // Cursors can be forged: the id must be a real UUID and the date one PostgreSQL can compare
    // (JavaScript dates reach back to year -271821, timestamptz only to 4713 BC).
    const year = created_at.getUTCFullYear();
    if (Number.isNaN(created_at.getTime()) || year < 1 || year > 9999 || !uuidSchema.safeParse(id).success) throw new Error('bad cursor');
    return { created_at: createdAt, id };
  } catch {
    throw new DispatchError('validation_failed', 'invalid query: query.cursor', [
      { field: 'query.cursor', message: 'not a cursor returned by this API' },
    ]);
  }
}

/** Observers and admins list every task; anyone else the tasks it may read (requested, holds or held, or their parent's requester). */
export async function listTasks(db: Db, query: ListTasksQuery, caller: Caller): Promise<{ tasks: q.ListedTask[]; nextCursor: string | null }> {
  const tasks = await q.listTasks(db, {
    ...query,
    involving: readsEverything(caller) ? undefined : caller.agent,
    after: query.cursor ? decodeCursor(query.cursor) : undefined,
  });
  const last = tasks.at(-1);
  return { tasks, nextCursor: tasks.length === query.limit && last ? encodeCursor(last) : null };
}

/**
 * A worker call touched no row: say precisely why, from the row as it is now.
 * (Only the failure path reads the row; the success path is a single statement.)
 */
async function explainRejectedWorkerCall(db: Db, call: q.WorkerCall, action: string): Promise<never> {
  const task = await q.findTask(db, call.taskId);
  if (!task) throw new DispatchError('not_found', `task ${call.taskId} not found`);
  // 403 is for an agent reaching into work another agent holds; a task nobody holds (pending, or
  // finished) cannot take the call from anyone, which is a 409 like any illegal transition.
  if ((task.status === 'assigned' || task.status === 'running') && task.assignee !== call.agent) {
    throw new DispatchError('forbidden', `only the assignee of task ${task.id} may ${action} it`);
  }
  if (call.attempt !== undefined && call.attempt !== task.attempt) {
    throw new DispatchError(
      'stale_attempt',
      `attempt ${call.attempt} of task ${task.id} is over (current attempt is ${task.attempt}, status ${task.status})`,
    );
  }
  throw new DispatchError('conflict', `cannot ${action} task ${task.id}: it is ${task.status}`);
}

export async function completeTask(db: Db, call: q.WorkerCall, result: unknown): Promise<TaskRow> {
  const complete = () => (db.isTransaction ? q.completeTask(db, call, result) : completeTaskBatched(db, call, result));
  return (await retryTransientConflicts(db, complete)) ?? (await explainRejectedWorkerCall(db, call, 'complete'));
}

export async function failTask(db: Db, policy: TaskPolicy, call: q.WorkerCall, error: string, retryable: boolean): Promise<TaskRow> {
  return (
    (await retryTransientConflicts(db, () => q.failTask(db, call, error, retryable, policy.retry))) ?? (await explainRejectedWorkerCall(db, call, 'fail'))
  );
}

export async function reportProgress(db: Db, call: q.WorkerCall, payload: unknown): Promise<TaskRow> {
  return (await retryTransientConflicts(db, () => q.recordProgress(db, call, payload))) ?? (await explainRejectedWorkerCall(db, call, 'report progress on'));
}

/** Only the requester or an admin may cancel or change a task's context. */
async function requireOwner(db: Db, id: string, caller: Caller, action: string): Promise<TaskRow> {
  const task = await getVisibleTask(db, id, caller);
  if (!caller.admin && (task.requester !== caller.agent || !hasRole(caller, 'requester'))) {
    throw new DispatchError('forbidden', `only the requester of task ${id} or an admin may ${action} it`);
  }
  return task;
}

export async function updateTask(
  db: Db,
  id: string,
  caller: Caller,
  change: { status?: 'cancelled'; context?: unknown },
): Promise<TaskRow> {
  await requireOwner(db, id, caller, change.status ? 'cancel' : 'change');
  if (change.status === 'cancelled') {
    const context = change.context === undefined ? undefined : { value: change.context };
    const [task] = await retryTransientConflicts(db, () => q.cancelTasks(db, [id], caller.actor, context));
    return task ?? (await rejectFinished(db, id, 'cancel'));
  }
  const task = await q.replaceContext(db, id, caller.agent, change.context);
  return task ?? (await rejectFinished(db, id, 'change the context of'));
}

async function rejectFinished(db: Db, id: string, action: string): Promise<never> {
  const task = await getTask(db, id);
  throw new DispatchError('conflict', `cannot ${action} task ${id}: it is ${task.status}`);
}
