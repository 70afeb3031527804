import { sql } from 'kysely';
import { expect } from 'vitest';
import { applyAssignments } from '../../src/assignment/assignment.queries.js';
import type { Db } from '../../src/db/database.js';
import type { TaskStatus } from '../../src/db/columns.js';
import type { TaskRow } from '../../src/db/database.js';
import { findTask, type NewTask } from '../../src/tasks/task.queries.js';
import type { ApiClient, ApiResponse } from './http.js';

/**
 * Puts a pending task in the hands of `agent` through the broker's own write (applyAssignments:
 * status, assignee, a new attempt, the deadline and the `assigned` event, in one statement),
 * so the worker calls can be tested without registering agents and waiting for assignment. The
 * deadline (timeout_ms, 5 minutes by default) outlives any test.
 */
export async function assignDirectly(db: Db, taskId: string, agent: string): Promise<TaskRow> {
  const applied = await db.transaction().execute((tx) => applyAssignments(tx, [{ taskId, agent, placement: null }]));
  if (applied.length === 0) throw new Error(`assignDirectly: task ${taskId} is not pending`);
  const task = await findTask(db, taskId);
  if (!task) throw new Error(`assignDirectly: task ${taskId} vanished`);
  return task;
}

/** What the create path's insert takes, with plain defaults: for tests that insert through it. */
export function newTaskRow(scope: string, extra: Partial<NewTask> = {}): NewTask {
  return {
    requester: 'planner',
    title: 'timed',
    description: null,
    scope,
    priority: 3,
    context: null,
    timeout_ms: 60_000,
    heartbeat_timeout_ms: null,
    start_timeout_ms: null,
    max_retries: 0,
    parent_id: null,
    idempotency_key: null,
    ...extra,
  };
}

export interface TaskSeed {
  requester?: string;
  title?: string;
  scope?: string;
  priority?: number;
  status?: TaskStatus;
  assignee?: string | null;
  parent_id?: string | null;
}

/**
 * Inserts `count` tasks in one statement, so they all share one created_at (the case keyset
 * pagination has to break ties on). Returns their ids.
 */
export async function insertTasks(db: Db, count: number, seed: TaskSeed = {}): Promise<string[]> {
  const status = seed.status ?? 'pending';
  const active = status === 'assigned' || status === 'running';
  const terminal = ['completed', 'failed', 'cancelled', 'timeout'].includes(status);
  const { rows } = await sql<{ id: string }>`
    INSERT INTO dispatch_tasks (requester, title, scope, priority, status, assignee, attempt, assigned_at, completed_at, parent_id)
    SELECT ${seed.requester ?? 'seeder'}, ${seed.title ?? 'seeded task'} || ' ' || n, ${seed.scope ?? 'seeded'},
           ${seed.priority ?? 3}, ${status}, ${seed.assignee ?? null}, ${active ? 1 : 0},
           CASE WHEN ${active} THEN now() END, CASE WHEN ${terminal} THEN now() END, ${seed.parent_id ?? null}::uuid
      FROM generate_series(1, ${count}) AS n
    RETURNING id`.execute(db);
  return rows.map((r) => r.id);
}

/** Creates a task through the API and insists it worked. */
export async function createTask(api: ApiClient, body: Record<string, unknown> = {}, agent?: string): Promise<any> {
  const response = await api('POST', '/api/v1/tasks', {
    body: { title: 'a task', scope: 'testing', ...body },
    ...(agent === undefined ? {} : { agent }),
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}

/**
 * Events that the assignment loop records on its own schedule (a pending task nobody can take is
 * noted `unmatched` once, whenever a tick happens to see it); assertions about the trail written
 * by API calls leave them out so they do not depend on tick timing.
 */
export const BROKER_NOTES = new Set(['unmatched']);

/** The task's audit trail in order, without the broker's asynchronous notes. */
export async function eventNames(db: Db, taskId: string): Promise<string[]> {
  const rows = await db.selectFrom('dispatch_task_events').select('event').where('task_id', '=', taskId).orderBy('id').execute();
  return rows.map((r) => r.event).filter((e) => !BROKER_NOTES.has(e));
}

/**
 * Checks an error response: its status, its code, the exact body shape every client relies on
 * ({"error": {"code", "message", "details": [{"field", "message"}]}}), and, when given, that a
 * detail names `field`.
 */
export function expectError(response: ApiResponse, status: number, code: string, field?: string): void {
  const context = JSON.stringify(response.body);
  expect(response.status, context).toBe(status);
  expect(response.headers.get('content-type'), context).toMatch(/^application\/json/);
  const body = response.body as { error?: Record<string, unknown> };
  expect(Object.keys(body), context).toEqual(['error']);
  const error = body.error!;
  expect(Object.keys(error).sort(), context).toEqual(['code', 'details', 'message']);
  expect(error.code, context).toBe(code);
  expect(typeof error.message, context).toBe('string');
  expect((error.message as string).length, context).toBeGreaterThan(0);
  expect(Array.isArray(error.details), context).toBe(true);
  for (const detail of error.details as Record<string, unknown>[]) {
    expect(Object.keys(detail).sort(), context).toEqual(['field', 'message']);
    expect(typeof detail.field, context).toBe('string');
    expect(typeof detail.message, context).toBe('string');
  }
  if (field !== undefined) {
    expect((error.details as { field: string }[]).map((d) => d.field), context).toContain(field);
  }
}
