import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assignDirectly, createTask, eventNames, expectError } from '../helpers/tasks.js';
import { useTaskApi, assignedTask } from '../helpers/task-api.js';

/**
 * Changing a task from outside: cancel and context replacement through PATCH, and who may do it.
 * Through real HTTP on a real PostgreSQL.
 */
const { api, db } = await useTaskApi();

describe('PATCH /api/v1/tasks/:id', () => {
  it('lets the requester cancel a pending task', async () => {
    const task = await createTask(api);
    const response = await api('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled' } });
    expect(response.status).toBe(200);
    expect(response.body.status).toBe('cancelled');
    expect(response.body.completed_at).toEqual(expect.any(String));
    expect(await eventNames(db, task.id)).toEqual(['created', 'cancelled']);
  });

  it('lets an admin cancel somebody else’s running task', async () => {
    const task = await assignedTask(api, db, 'worker-c');
    await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-c', body: {} });
    const response = await api('PATCH', `/api/v1/tasks/${task.id}`, { agent: 'operator', admin: true, body: { status: 'cancelled' } });
    expect(response.status).toBe(200);
    expect(response.body.status).toBe('cancelled');
    const events = await api('GET', `/api/v1/tasks/${task.id}/events`);
    expect(events.body.events.at(-1)).toMatchObject({ event: 'cancelled', agent_id: 'operator' });
  });

  it('refuses (403) a cancel from an agent that is neither requester nor admin', async () => {
    const task = await createTask(api);
    expectError(await api('PATCH', `/api/v1/tasks/${task.id}`, { agent: 'intruder', body: { status: 'cancelled' } }), 403, 'forbidden');
    expectError(
      await api('PATCH', `/api/v1/tasks/${task.id}`, { agent: 'intruder', token: 'wrong-token', body: { status: 'cancelled' } }),
      403,
      'forbidden',
    );
    const assignee = await assignDirectly(db, task.id, 'worker-d');
    expectError(await api('PATCH', `/api/v1/tasks/${task.id}`, { agent: assignee.assignee!, body: { status: 'cancelled' } }), 403, 'forbidden');
    expect((await api('GET', `/api/v1/tasks/${task.id}`)).body.status).toBe('assigned');
  });

  it('answers 409 when cancelling a finished task, and twice', async () => {
    const task = await assignedTask(api, db, 'worker-e');
    expect((await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-e', body: { result: 1 } })).status).toBe(200);
    expectError(await api('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled' } }), 409, 'conflict');
    expect((await api('GET', `/api/v1/tasks/${task.id}`)).body.status).toBe('completed');

    const other = await createTask(api);
    expect((await api('PATCH', `/api/v1/tasks/${other.id}`, { body: { status: 'cancelled' } })).status).toBe(200);
    expectError(await api('PATCH', `/api/v1/tasks/${other.id}`, { body: { status: 'cancelled' } }), 409, 'conflict');
    expect(await eventNames(db, other.id)).toEqual(['created', 'cancelled']);
  });

  it('replaces the context while the task is open', async () => {
    const task = await createTask(api, { context: { v: 1 } });
    const response = await api('PATCH', `/api/v1/tasks/${task.id}`, { body: { context: { v: 2, list: [1, 2] } } });
    expect(response.status).toBe(200);
    expect(response.body.context).toEqual({ v: 2, list: [1, 2] });
    expect(await eventNames(db, task.id)).toEqual(['created', 'context_updated']);
    expectError(await api('PATCH', `/api/v1/tasks/${task.id}`, { agent: 'intruder', body: { context: {} } }), 403, 'forbidden');
  });

  it.each([
    ['an empty body', {}, 'status'],
    ['a status other than cancelled', { status: 'completed' }, 'status'],
    ['an unknown field', { title: 'renamed' }, 'title'],
  ])('answers 400 for %s', async (_case, body, field) => {
    const task = await createTask(api);
    expectError(await api('PATCH', `/api/v1/tasks/${task.id}`, { body }), 400, 'validation_failed', field);
  });

  it('answers 400 for a bad id and 404 for an unknown task', async () => {
    expectError(await api('PATCH', '/api/v1/tasks/nope', { body: { status: 'cancelled' } }), 400, 'validation_failed', 'id');
    expectError(await api('PATCH', `/api/v1/tasks/${randomUUID()}`, { body: { status: 'cancelled' } }), 404, 'not_found');
  });
});
