import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assignDirectly, createTask, eventNames, expectError } from '../helpers/tasks.js';
import { useTaskApi, assignedTask } from '../helpers/task-api.js';

/**
 * The worker's calls (progress, complete, fail) on the attempt it holds, and the races the state
 * machine must win. Through real HTTP on a real PostgreSQL.
 */
const { api, db } = await useTaskApi();

describe('worker calls: progress, complete, fail', () => {
  it('progress moves an assigned task to running once, stamping started_at, and keeps the payload', async () => {
    const task = await assignedTask(api, db, 'worker-p');
    const first = await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p', body: { pct: 10 } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'running', assignee: 'worker-p' });
    expect(first.body.started_at).toEqual(expect.any(String));
    const second = await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p', body: { pct: 60, note: 'halfway' } });
    expect(second.status).toBe(200);
    expect(second.body.started_at).toBe(first.body.started_at);
    const events = await api('GET', `/api/v1/tasks/${task.id}/events`);
    const progress = events.body.events.filter((e: { event: string }) => e.event === 'progress');
    expect(progress.map((e: { payload: unknown }) => e.payload)).toEqual([{ pct: 10 }, { pct: 60, note: 'halfway' }]);
  });

  it('progress accepts an empty body', async () => {
    const task = await assignedTask(api, db, 'worker-p2');
    const response = await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p2' });
    expect(response.status).toBe(200);
    expect(response.body.status).toBe('running');
  });

  it('progress refuses a body that is not an object, or a bad attempt', async () => {
    const task = await assignedTask(api, db, 'worker-p3');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p3', body: [1] }), 400, 'validation_failed');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p3', body: { attempt: 'one' } }), 400, 'validation_failed', 'attempt');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p3', rawBody: '{' }), 400, 'invalid_json');
  });

  it('complete stores the result and stamps completed_at, from assigned or running', async () => {
    const assigned = await assignedTask(api, db, 'worker-q');
    const done = await api('POST', `/api/v1/tasks/${assigned.id}/complete`, { agent: 'worker-q', body: { result: { answer: 42 } } });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'completed', result: { answer: 42 }, assignee: 'worker-q' });
    expect(done.body.completed_at).toEqual(expect.any(String));

    const running = await assignedTask(api, db, 'worker-q');
    await api('POST', `/api/v1/tasks/${running.id}/progress`, { agent: 'worker-q', body: {} });
    const alsoDone = await api('POST', `/api/v1/tasks/${running.id}/complete`, { agent: 'worker-q', body: {} });
    expect(alsoDone.status).toBe(200);
    expect(alsoDone.body).toMatchObject({ status: 'completed', result: null });
  });

  it('complete refuses unknown fields and bad JSON', async () => {
    const task = await assignedTask(api, db, 'worker-r');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-r', body: { result: 1, extra: true } }), 400, 'validation_failed', 'extra');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-r', rawBody: '{"result": }' }), 400, 'invalid_json');
    expect((await api('GET', `/api/v1/tasks/${task.id}`)).body.status).toBe('assigned');
  });

  it('answers 409 when completing a pending task, and writes nothing', async () => {
    const task = await createTask(api);
    expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-s', body: { result: 1 } }), 409, 'conflict');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'requester-1', body: { result: 1 } }), 409, 'conflict');
    const after = await api('GET', `/api/v1/tasks/${task.id}`);
    expect(after.body).toMatchObject({ status: 'pending', result: null });
    expect(await eventNames(db, task.id)).toEqual(['created']);
  });

  it('answers 409 when completing twice, and keeps the first result', async () => {
    const task = await assignedTask(api, db, 'worker-t');
    expect((await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-t', body: { result: 'first' } })).status).toBe(200);
    expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-t', body: { result: 'second' } }), 409, 'conflict');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-t', body: { error: 'late' } }), 409, 'conflict');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-t', body: {} }), 409, 'conflict');
    const after = await api('GET', `/api/v1/tasks/${task.id}`);
    expect(after.body).toMatchObject({ status: 'completed', result: 'first', error: null });
    expect(await eventNames(db, task.id)).toEqual(['created', 'assigned', 'completed']);
  });

  it('answers 409 when completing a cancelled task', async () => {
    const task = await assignedTask(api, db, 'worker-u');
    expect((await api('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled' } })).status).toBe(200);
    expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-u', body: { result: 1 } }), 409, 'conflict');
    expect((await api('GET', `/api/v1/tasks/${task.id}`)).body.status).toBe('cancelled');
  });

  it.each(['complete', 'fail', 'progress'])('answers 403 when an agent other than the assignee calls %s', async (action) => {
    const task = await assignedTask(api, db, 'worker-v');
    const body = action === 'fail' ? { error: 'not mine' } : action === 'complete' ? { result: 'stolen' } : { pct: 1 };
    expectError(await api('POST', `/api/v1/tasks/${task.id}/${action}`, { agent: 'worker-w', body }), 403, 'forbidden');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/${action}`, { agent: 'requester-1', body }), 403, 'forbidden');
    // Being an admin does not make an agent the assignee.
    expectError(await api('POST', `/api/v1/tasks/${task.id}/${action}`, { agent: 'operator', admin: true, body }), 403, 'forbidden');
    const after = await api('GET', `/api/v1/tasks/${task.id}`);
    expect(after.body).toMatchObject({ status: 'assigned', assignee: 'worker-v', result: null, error: null });
    expect(await eventNames(db, task.id)).toEqual(['created', 'assigned']);
  });

  it.each(['complete', 'fail', 'progress'])('answers 400 for a bad id and 404 for an unknown task on %s', async (action) => {
    const body = action === 'fail' ? { error: 'x' } : {};
    expectError(await api('POST', `/api/v1/tasks/xyz/${action}`, { agent: 'worker-v', body }), 400, 'validation_failed', 'id');
    expectError(await api('POST', `/api/v1/tasks/${randomUUID()}/${action}`, { agent: 'worker-v', body }), 404, 'not_found');
  });

  describe('attempts (leases)', () => {
    it('accepts the current attempt and answers 409 stale_attempt for any other', async () => {
      const task = await assignedTask(api, db, 'worker-x');
      expect(task.attempt).toBe(1);
      expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-x', body: { result: 1, attempt: 2 } }), 409, 'stale_attempt');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-x', body: { attempt: 7 } }), 409, 'stale_attempt');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-x', body: { error: 'e', attempt: 3 } }), 409, 'stale_attempt');
      expect((await api('GET', `/api/v1/tasks/${task.id}`)).body.status).toBe('assigned');
      const done = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-x', body: { result: 1, attempt: 1 } });
      expect(done.status).toBe(200);
    });

    it('refuses a call from an earlier attempt after the task was given to the same agent again', async () => {
      const task = await assignedTask(api, db, 'worker-y', { max_retries: 2 });
      const failed = await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-y', body: { error: 'flaky', attempt: 1 } });
      expect(failed.body).toMatchObject({ status: 'pending', retry_count: 1 });
      const second = await assignDirectly(db, task.id, 'worker-y');
      expect(second.attempt).toBe(2);
      const late = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-y', body: { result: 'from attempt 1', attempt: 1 } });
      expectError(late, 409, 'stale_attempt');
      expect(late.body.error.message).toContain('attempt 1');
      const current = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-y', body: { result: 'from attempt 2', attempt: 2 } });
      expect(current.status).toBe(200);
      expect(current.body.result).toBe('from attempt 2');
    });

    it('refuses an attempt that is not a positive integer', async () => {
      const task = await assignedTask(api, db, 'worker-z');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-z', body: { attempt: 0 } }), 400, 'validation_failed', 'attempt');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-z', body: { attempt: '1' } }), 400, 'validation_failed', 'attempt');
    });
  });

  describe('fail', () => {
    it('sends a task with retries left back to pending, with retry_count+1 and a backoff', async () => {
      const task = await assignedTask(api, db, 'worker-f', { max_retries: 1 });
      const before = Date.now();
      const response = await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-f', body: { error: 'disk full' } });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'pending', retry_count: 1, max_retries: 1, error: 'disk full', completed_at: null });
      expect(Date.parse(response.body.not_before)).toBeGreaterThan(before);
      expect(await eventNames(db, task.id)).toEqual(['created', 'assigned', 'fail_retry']);

      // The retry budget is spent: the next failure is final.
      await assignDirectly(db, task.id, 'worker-g');
      const final = await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-g', body: { error: 'disk still full' } });
      expect(final.status).toBe(200);
      expect(final.body).toMatchObject({ status: 'failed', retry_count: 1, error: 'disk still full', not_before: null });
      expect(final.body.completed_at).toEqual(expect.any(String));
      expect(await eventNames(db, task.id)).toEqual(['created', 'assigned', 'fail_retry', 'assigned', 'failed']);
    });

    it('fails for good when the worker says retryable: false', async () => {
      const task = await assignedTask(api, db, 'worker-h', { max_retries: 3 });
      const response = await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-h', body: { error: 'bad input', retryable: false } });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'failed', retry_count: 0, error: 'bad input' });
      expect(await eventNames(db, task.id)).toEqual(['created', 'assigned', 'failed']);
    });

    it('fails for good when max_retries is 0', async () => {
      const task = await assignedTask(api, db, 'worker-h', { max_retries: 0 });
      const response = await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-h', body: { error: 'boom' } });
      expect(response.body).toMatchObject({ status: 'failed', retry_count: 0 });
    });

    it.each([
      ['a missing error', {}, 'error'],
      ['an empty error', { error: '' }, 'error'],
      ['a non-boolean retryable', { error: 'x', retryable: 'no' }, 'retryable'],
      ['an unknown field', { error: 'x', reason: 'y' }, 'reason'],
    ])('answers 400 for %s', async (_case, body, field) => {
      const task = await assignedTask(api, db, 'worker-i');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-i', body }), 400, 'validation_failed', field);
    });
  });

  describe('races', () => {
    it('two completions of one task by its assignee: exactly one wins, and its result is stored', async () => {
      for (let round = 0; round < 15; round++) {
        const task = await assignedTask(api, db, 'racer');
        const [a, b] = await Promise.all([
          api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'racer', body: { result: { by: 'a' } } }),
          api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'racer', body: { result: { by: 'b' } } }),
        ]);
        expect([a.status, b.status].sort()).toEqual([200, 409]);
        const [winner, loser] = a.status === 200 ? [a, b] : [b, a];
        expectError(loser, 409, 'conflict');
        const stored = await api('GET', `/api/v1/tasks/${task.id}`);
        expect(stored.body.result).toEqual(winner.body.result);
        expect(stored.body.status).toBe('completed');
        expect((await eventNames(db, task.id)).filter((e) => e === 'completed')).toHaveLength(1);
      }
    });

    it('complete against cancel: exactly one wins and the task ends in its state', async () => {
      for (let round = 0; round < 10; round++) {
        const task = await assignedTask(api, db, 'racer-2');
        const [complete, cancel] = await Promise.all([
          api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'racer-2', body: { result: 'done' } }),
          api('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled' } }),
        ]);
        expect([complete.status, cancel.status].sort()).toEqual([200, 409]);
        const stored = await api('GET', `/api/v1/tasks/${task.id}`);
        expect(stored.body.status).toBe(complete.status === 200 ? 'completed' : 'cancelled');
        const events = await eventNames(db, task.id);
        expect(events.filter((e) => e === 'completed' || e === 'cancelled')).toHaveLength(1);
      }
    });
  });
});
