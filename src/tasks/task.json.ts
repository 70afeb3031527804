import type { TaskEventRow, TaskRow } from '../db/database.js';

const iso = (value: Date | null) => (value ? value.toISOString() : null);

/** A task as the API shows it: v1's fields first, then what v2 adds. */
export function taskToJson(task: TaskRow) {
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
    created_at: iso(task.created_at),
    assigned_at: iso(task.assigned_at),
    started_at: iso(task.started_at),
    completed_at: iso(task.completed_at),
    attempt: task.attempt,
    heartbeat_timeout_ms: task.heartbeat_timeout_ms,
    start_timeout_ms: task.start_timeout_ms,
    reassign_count: task.reassign_count,
    not_before: iso(task.not_before),
    deadline_at: iso(task.deadline_at),
    updated_at: iso(task.updated_at),
  };
}
export type TaskJson = ReturnType<typeof taskToJson>;

export function taskEventToJson(event: TaskEventRow) {
  return {
    id: event.id,
    event_id: event.event_id,
    task_id: event.task_id,
    event: event.event,
    agent_id: event.agent_id,
    attempt: event.attempt,
    payload: event.payload,
    created_at: iso(event.created_at),
  };
}
