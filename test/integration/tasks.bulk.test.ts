import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { assignDirectly, createTask, eventNames, expectError, insertTasks } from '../helpers/tasks.js';
import { assignedTask, unique, useTaskApi } from '../helpers/task-api.js';

/**
 * Bulk cancel and requeue (POST /api/v1/tasks/cancel, /requeue) and the single requeue, through
 * real HTTP on a real PostgreSQL: who may, what a filter reaches, the limit, the audit trail, and
 * that a requeued task is a fresh task whose old attempt stays fenced off.
 */
const { api, db } = await useTaskApi();
const admin = { agent: 'operator', admin: true } as const;

async function statuses(ids: string[]): Promise<Record<string, number>> {
  const rows = await db.selectFrom('dispatch_tasks').select('status').where('id', 'in', ids).execute();
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.status] = (counts[row.status] ?? 0) + 1;
  return counts;
}

async function failedTask(worker: string, scope: string) {
  const task = await assignedTask(api, db, worker, { scope, max_retries: 0 });
  const failed = await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: worker, body: { error: 'downstream broke', retryable: false, attempt: task.attempt } });
  expect(failed.body.status).toBe('failed');
  return task;
}

describe('POST /api/v1/tasks/cancel', () => {
  it('cancels the unfinished tasks of a scope, at most `limit` per call, each with its audit event', async () => {
    const scope = unique('bulk-cancel');
    const ids = await insertTasks(db, 7, { scope });
    const finished = await insertTasks(db, 2, { scope, status: 'completed' });
    const elsewhere = await insertTasks(db, 3, { scope: unique('other') });

    const first = await api('POST', '/api/v1/tasks/cancel', { ...admin, body: { filter: { scope }, limit: 5 } });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toEqual({ changed: 5, limit_reached: true });
    const second = await api('POST', '/api/v1/tasks/cancel', { ...admin, body: { filter: { scope }, limit: 5 } });
    expect(second.body).toEqual({ changed: 2, limit_reached: false });

    expect(await statuses(ids)).toEqual({ cancelled: 7 });
    expect(await statuses(finished)).toEqual({ completed: 2 });
    expect(await statuses(elsewhere)).toEqual({ pending: 3 });
    const trail = await db.selectFrom('dispatch_task_events').select(['task_id', 'agent_id']).where('task_id', 'in', ids).where('event', '=', 'cancelled').execute();
    expect(trail.map((e) => e.task_id).sort()).toEqual([...ids].sort());
    expect(new Set(trail.map((e) => e.agent_id))).toEqual(new Set(['operator']));
  });

  it('walks past one batch: 1,200 tasks in one call, filtered by requester and creation time', async () => {
    const requester = unique('bulk-requester');
    const before = await insertTasks(db, 1_200, { requester });
    const { rows } = await sql<{ now: Date }>`SELECT clock_timestamp() AS now`.execute(db);
    const later = await insertTasks(db, 4, { requester });
    const response = await api('POST', '/api/v1/tasks/cancel', {
      ...admin,
      body: { filter: { requester, created_before: rows[0]!.now.toISOString() }, limit: 100_000 },
    });
    expect(response.body).toEqual({ changed: 1_200, limit_reached: false });
    expect(await statuses(before)).toEqual({ cancelled: 1_200 });
    expect(await statuses(later)).toEqual({ pending: 4 });
  });

  it('frees the slot of an agent holding a cancelled task, and leaves the others alone', async () => {
    const scope = unique('bulk-held');
    const held = await assignedTask(api, db, 'bulk-worker-1', { scope });
    const other = await assignedTask(api, db, 'bulk-worker-2', { scope });
    const response = await api('POST', '/api/v1/tasks/cancel', { ...admin, body: { filter: { ids: [held.id], assignee: 'bulk-worker-1' }, limit: 10 } });
    expect(response.body.changed).toBe(1);
    expect(await statuses([held.id, other.id])).toEqual({ cancelled: 1, assigned: 1 });
    const late = await api('POST', `/api/v1/tasks/${held.id}/complete`, { agent: 'bulk-worker-1', body: { result: 1, attempt: held.attempt } });
    expectError(late, 409, 'conflict');
  });
});

describe('POST /api/v1/tasks/requeue', () => {
  it('puts failed and timed-out tasks back as fresh pending tasks, each with a requeued event', async () => {
    const scope = unique('bulk-requeue');
    const failed = await failedTask('requeue-worker', scope);
    const timedOut = await insertTasks(db, 3, { scope, status: 'timeout' });
    const completed = await insertTasks(db, 1, { scope, status: 'completed' });
    const response = await api('POST', '/api/v1/tasks/requeue', { ...admin, body: { filter: { scope }, limit: 100 } });
    expect(response.body).toEqual({ changed: 4, limit_reached: false });
    expect(await statuses([failed.id, ...timedOut])).toEqual({ pending: 4 });
    expect(await statuses(completed)).toEqual({ completed: 1 });

    const again = (await api('GET', `/api/v1/tasks/${failed.id}`)).body;
    expect(again).toMatchObject({ status: 'pending', error: null, retry_count: 0, completed_at: null, assigned_at: null });
    expect(await eventNames(db, failed.id)).toEqual(['created', 'assigned', 'failed', 'requeued']);
    const requeued = await db.selectFrom('dispatch_task_events').select(['payload', 'agent_id']).where('task_id', '=', failed.id).where('event', '=', 'requeued').executeTakeFirstOrThrow();
    expect(requeued.payload).toMatchObject({ previous_status: 'failed', previous_error: 'downstream broke', requeued_by: 'operator' });
  });

  it('fences off the old attempt: the next holder works attempt 2, a late call for attempt 1 is refused', async () => {
    const task = await failedTask('first-holder', unique('requeue-fence'));
    expect((await api('POST', `/api/v1/tasks/${task.id}/requeue`, admin)).body.status).toBe('pending');
    const second = await assignDirectly(db, task.id, 'second-holder');
    expect(second.attempt).toBe(task.attempt + 1);
    expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'second-holder', body: { result: 'x', attempt: task.attempt } }), 409, 'stale_attempt');
    expect((await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'second-holder', body: { result: 'x', attempt: second.attempt } })).status).toBe(200);
  });

  it('refuses a single requeue of a task that has not failed (409) or does not exist (404)', async () => {
    const pending = await createTask(api);
    expectError(await api('POST', `/api/v1/tasks/${pending.id}/requeue`, admin), 409, 'conflict');
    expectError(await api('POST', '/api/v1/tasks/00000000-0000-7000-8000-000000000000/requeue', admin), 404, 'not_found');
  });
});

describe('bulk actions: who may, and what the request must say', () => {
  it('are for admins only', async () => {
    const scope = unique('bulk-forbidden');
    const [id] = await insertTasks(db, 1, { scope, requester: 'requester-1' });
    expectError(await api('POST', '/api/v1/tasks/cancel', { body: { filter: { scope }, limit: 1 } }), 403, 'forbidden');
    expectError(await api('POST', '/api/v1/tasks/requeue', { body: { filter: { scope }, limit: 1 } }), 403, 'forbidden');
    expectError(await api('POST', `/api/v1/tasks/${id}/requeue`), 403, 'forbidden');
    expect(await statuses([id!])).toEqual({ pending: 1 });
  });

  it('need a limit and at least one filter field, and name the field that is wrong', async () => {
    expectError(await api('POST', '/api/v1/tasks/cancel', { ...admin, body: { filter: { scope: 'x' } } }), 400, 'validation_failed', 'limit');
    expectError(await api('POST', '/api/v1/tasks/cancel', { ...admin, body: { filter: {}, limit: 10 } }), 400, 'validation_failed', 'filter');
    expectError(await api('POST', '/api/v1/tasks/requeue', { ...admin, body: { filter: { ids: ['nope'] }, limit: 10 } }), 400, 'validation_failed', 'filter.ids.0');
    expectError(await api('POST', '/api/v1/tasks/requeue', { ...admin, body: { filter: { created_after: 'yesterday' }, limit: 10 } }), 400, 'validation_failed', 'filter.created_after');
    expectError(await api('POST', '/api/v1/tasks/cancel', { ...admin, body: { filter: { status: 'completed' }, limit: 10 } }), 400, 'validation_failed', 'filter.status');
    expectError(await api('POST', '/api/v1/tasks/requeue', { ...admin, body: { filter: { status: 'pending' }, limit: 10 } }), 400, 'validation_failed', 'filter.status');
  });
});
