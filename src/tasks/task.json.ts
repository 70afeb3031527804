import { z } from 'zod';
import type { TaskEventRow, TaskRow } from '../db/database.js';
import { TASK_STATUSES, TERMINAL_STATUSES } from '../db/columns.js';
import type { Dependency } from './dependencies.queries.js';

const iso = (value: Date | null) => (value ? value.toISOString() : null);
const timestamp = z.iso.datetime();
const when = timestamp.nullable();
/** Any JSON the caller sent (context, result, progress payloads); null when there is none. */
const anyJson = z.unknown();
const ON_DEPENDENCY_FAILURE = ['cancel', 'run'] as const;
type OnDependencyFailure = (typeof ON_DEPENDENCY_FAILURE)[number];
/** expired: not assigned by start_by; execution: timeout_ms; heartbeat: heartbeat_timeout_ms. */
const TIMEOUT_REASONS = ['expired', 'execution', 'heartbeat'] as const;
type TimeoutReason = (typeof TIMEOUT_REASONS)[number];

/**
 * A task as the API shows it: v1's fields first, then what v2 adds. The schema documents it in
 * openapi.json (`Task`); `taskToJson` is typed by it, so the two cannot disagree on a field.
 */
export const taskJsonSchema = z
  .object({
    id: z.uuid(),
    requester: z.string(),
    title: z.string(),
    description: z.string().nullable(),
    scope: z.string(),
    priority: z.number().int().min(1).max(5).describe('1 is the most urgent'),
    status: z.enum(TASK_STATUSES),
    assignee: z.string().nullable().describe('the agent holding the task, or that last held it'),
    result: anyJson.describe('what the agent completed the task with'),
    error: z.string().nullable(),
    context: anyJson,
    timeout_ms: z.number().int(),
    max_retries: z.number().int(),
    retry_count: z.number().int(),
    parent_id: z.uuid().nullable(),
    created_at: timestamp,
    assigned_at: when,
    started_at: when,
    completed_at: when,
    attempt: z.number().int().describe('the lease: progress, complete and fail carry it; each assignment is a new attempt'),
    heartbeat_timeout_ms: z.number().int().nullable(),
    start_timeout_ms: z.number().int().nullable(),
    reassign_count: z.number().int(),
    not_before: when.describe('retry backoff: not assigned before this instant'),
    deadline_at: when,
    updated_at: timestamp,
    traceparent: z.string().nullable().describe('the W3C trace context sent with the create request, for the assignee to continue the trace'),
    waiting_on: z.number().int().describe('dependencies not yet ended; the task is waiting while this is above 0'),
    on_dependency_failure: z.enum(ON_DEPENDENCY_FAILURE).describe('what happens when a dependency fails, is cancelled or times out'),
    run_at: when.describe('delayed task: the instant requested (run_at, or creation + delay_ms)'),
    start_by: when.describe('expiry: a task still pending at this instant ends timeout with timeout_reason expired'),
    timeout_reason: z.enum(TIMEOUT_REASONS).nullable().describe('why a task ended timeout; null for other statuses'),
  })
  .meta({ id: 'Task' });
export type TaskJson = z.infer<typeof taskJsonSchema>;

export function taskToJson(task: TaskRow): TaskJson {
  return {
    id: task.id,
    requester: task.requester,
    title: task.title,
    description: task.description,
    scope: task.scope,
    priority: task.priority,
    status: task.status,
    assignee: task.assignee,
    result: task.result ?? null,
    error: task.error,
    context: task.context ?? null,
    timeout_ms: task.timeout_ms,
    max_retries: task.max_retries,
    retry_count: task.retry_count,
    parent_id: task.parent_id,
    created_at: task.created_at.toISOString(),
    assigned_at: iso(task.assigned_at),
    started_at: iso(task.started_at),
    completed_at: iso(task.completed_at),
    attempt: task.attempt,
    heartbeat_timeout_ms: task.heartbeat_timeout_ms,
    start_timeout_ms: task.start_timeout_ms,
    reassign_count: task.reassign_count,
    not_before: iso(task.not_before),
    deadline_at: iso(task.deadline_at),
    updated_at: task.updated_at.toISOString(),
    traceparent: task.traceparent,
    waiting_on: task.waiting_on,
    // Both columns are CHECK-constrained to these values (migrations 0013 and 0012).
    on_dependency_failure: task.on_dependency_failure as OnDependencyFailure,
    run_at: iso(task.run_at),
    start_by: iso(task.start_by),
    timeout_reason: task.timeout_reason as TimeoutReason | null,
  };
}

/** A task with its dependencies (`TaskWithDependencies` in openapi.json): GET one and the create answer. */
export const taskWithDependenciesJsonSchema = taskJsonSchema
  .extend({
    depends_on: z.array(z.uuid()).describe('every task this one depends on'),
    waiting_for: z.array(z.uuid()).describe('the dependencies not yet ended while the task is waiting; empty once it is not'),
  })
  .meta({ id: 'TaskWithDependencies' });
export type TaskWithDependenciesJson = z.infer<typeof taskWithDependenciesJsonSchema>;

/**
 * One task with its dependencies (GET /api/v1/tasks/:id and the create response): all of them,
 * and those it still waits for (open now; empty once it is no longer waiting).
 */
export function taskWithDependenciesToJson(task: TaskRow, dependencies: readonly Dependency[]): TaskWithDependenciesJson {
  const open = task.status === 'waiting' ? dependencies.filter((dep) => !(TERMINAL_STATUSES as readonly string[]).includes(dep.status)) : [];
  return { ...taskToJson(task), depends_on: dependencies.map((dep) => dep.id), waiting_for: open.map((dep) => dep.id) };
}

/** One entry of a task's audit trail (`TaskEvent` in openapi.json). */
export const taskEventJsonSchema = z
  .object({
    id: z.number().int().describe('monotonic: gives the order of events'),
    event_id: z.uuid().describe('globally unique, carried in the NATS message of the event'),
    task_id: z.uuid(),
    event: z.string().describe('created, assigned, progress, completed, failed, fail_retry, timeout_retry, reassigned, cancelled, unmatched, context_updated, ...'),
    agent_id: z.string().nullable(),
    attempt: z.number().int().nullable(),
    payload: anyJson,
    created_at: timestamp,
  })
  .meta({ id: 'TaskEvent' });
export type TaskEventJson = z.infer<typeof taskEventJsonSchema>;

export function taskEventToJson(event: TaskEventRow): TaskEventJson {
  return {
    id: event.id,
    event_id: event.event_id,
    task_id: event.task_id,
    event: event.event,
    agent_id: event.agent_id,
    attempt: event.attempt,
    payload: event.payload,
    created_at: event.created_at.toISOString(),
  };
}
