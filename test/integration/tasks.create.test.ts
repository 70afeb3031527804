import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { insertTaskBatched } from '../../src/tasks/task.batcher.js';
import { createTask, eventNames, expectError } from '../helpers/tasks.js';
import { useTaskApi, countTasks, MiB, unique } from '../helpers/task-api.js';

/**
 * Creating tasks: the v1 contract of POST /api/v1/tasks, its errors and body limits, idempotency
 * keys, and group commit under load. Through real HTTP on a real PostgreSQL.
 */
const { dispatch, api, db } = await useTaskApi();

describe('POST /api/v1/tasks', () => {
  it('creates a pending task with the v1 defaults, owned by the X-Agent-ID', async () => {
    const response = await api('POST', '/api/v1/tasks', {
      body: { title: '  Review PR 42  ', scope: 'Code-Review', description: 'please', context: { pr: 42 } },
    });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      requester: 'requester-1',
      title: 'Review PR 42',
      description: 'please',
      scope: 'code-review',
      priority: 3,
      status: 'pending',
      assignee: null,
      result: null,
      error: null,
      context: { pr: 42 },
      timeout_ms: 300_000,
      max_retries: 1,
      retry_count: 0,
      parent_id: null,
      assigned_at: null,
      started_at: null,
      completed_at: null,
      attempt: 0,
    });
    expect(response.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('location')).toBe(`/api/v1/tasks/${response.body.id}`);
    expect(Date.parse(response.body.created_at)).not.toBeNaN();
    const stored = await db.selectFrom('dispatch_tasks').selectAll().where('id', '=', response.body.id).executeTakeFirstOrThrow();
    expect(stored).toMatchObject({ requester: 'requester-1', scope: 'code-review', status: 'pending', context: { pr: 42 } });
  });

  it('stores every optional field it is given', async () => {
    const parent = await createTask(api);
    const optional = { priority: 1, timeout_ms: 5_000, heartbeat_timeout_ms: 1_000, start_timeout_ms: 60_000, max_retries: 4, parent_id: parent.id };
    const task = await createTask(api, { ...optional, requester: 'requester-1' });
    expect(task).toMatchObject(optional);
  });

  it.each([
    ['title is missing', { scope: 'x' }, 'title'],
    ['title is blank', { title: '   ', scope: 'x' }, 'title'],
    ['title is not a string', { title: 7, scope: 'x' }, 'title'],
    ['scope is missing', { title: 't' }, 'scope'],
    ['scope is blank', { title: 't', scope: '' }, 'scope'],
    ['priority is 0', { title: 't', scope: 'x', priority: 0 }, 'priority'],
    ['priority is 6', { title: 't', scope: 'x', priority: 6 }, 'priority'],
    ['priority is 2.5', { title: 't', scope: 'x', priority: 2.5 }, 'priority'],
    ['priority is a string', { title: 't', scope: 'x', priority: 'high' }, 'priority'],
    ['timeout_ms is 0', { title: 't', scope: 'x', timeout_ms: 0 }, 'timeout_ms'],
    ['max_retries is negative', { title: 't', scope: 'x', max_retries: -1 }, 'max_retries'],
    ['parent_id is not a uuid', { title: 't', scope: 'x', parent_id: 'nope' }, 'parent_id'],
    ['requester differs from X-Agent-ID', { title: 't', scope: 'x', requester: 'someone-else' }, 'requester'],
  ])('answers 400 naming the field when %s', async (_case, body, field) => {
    const response = await api('POST', '/api/v1/tasks', { body });
    expectError(response, 400, 'validation_failed', field);
    expect(response.body.error.message).toContain(field);
  });

  it('names both fields when title and scope are missing', async () => {
    const response = await api('POST', '/api/v1/tasks', { body: {} });
    expectError(response, 400, 'validation_failed', 'title');
    expectError(response, 400, 'validation_failed', 'scope');
  });

  it('refuses an unknown field and names it', async () => {
    const response = await api('POST', '/api/v1/tasks', { body: { title: 't', scope: 'x', colour: 'blue' } });
    expectError(response, 400, 'validation_failed', 'colour');
    expect(response.body.error.details).toContainEqual({ field: 'colour', message: 'unknown field' });
    expect(response.body.error.message).toContain('colour');
  });

  it('refuses a parent_id that names no task', async () => {
    const response = await api('POST', '/api/v1/tasks', { body: { title: 't', scope: 'x', parent_id: randomUUID() } });
    expectError(response, 400, 'validation_failed', 'parent_id');
  });

  it.each([
    ['truncated JSON', '{"title": "t", "scope": '],
    ['a trailing comma', '{"title": "t", "scope": "x",}'],
    ['plain text', 'title=t&scope=x'],
  ])('answers 400 invalid_json for %s', async (_case, rawBody) => {
    const response = await api('POST', '/api/v1/tasks', { rawBody });
    expectError(response, 400, 'invalid_json');
  });

  it('answers 400 when the JSON body is not an object', async () => {
    expectError(await api('POST', '/api/v1/tasks', { rawBody: '[1,2]' }), 400, 'validation_failed');
    expectError(await api('POST', '/api/v1/tasks', { rawBody: '"task"' }), 400, 'validation_failed');
  });

  it('accepts a body just under 1 MiB', async () => {
    const requester = unique('big');
    const filler = 'x'.repeat(MiB - 200);
    const response = await api('POST', '/api/v1/tasks', { agent: requester, body: { title: 't', scope: 'x', context: { filler } } });
    expect(response.status).toBe(201);
    expect(response.body.context.filler).toHaveLength(filler.length);
  });

  it('answers 413 for a body over 1 MiB, and creates nothing', async () => {
    const requester = unique('big');
    const rawBody = JSON.stringify({ title: 't', scope: 'x', context: { filler: 'x'.repeat(MiB) } });
    const response = await api('POST', '/api/v1/tasks', { agent: requester, rawBody });
    expectError(response, 413, 'payload_too_large');
    expect(await countTasks(db, { requester })).toBe(0);
  });

  it('keeps serving the same client after refusing an oversize body', async () => {
    // The refused body is never read, so the connection cannot be reused: the client must be told
    // to open a new one, or its next request fails with "other side closed".
    const requester = unique('big');
    const rawBody = JSON.stringify({ title: 't', scope: 'x', context: 'x'.repeat(MiB) });
    for (let i = 0; i < 5; i++) {
      const refused = await api('POST', '/api/v1/tasks', { agent: requester, rawBody });
      expectError(refused, 413, 'payload_too_large');
      expect((await api('POST', '/api/v1/tasks', { agent: requester, body: { title: `after ${i}`, scope: 'x' } })).status).toBe(201);
    }
    expect(await countTasks(db, { requester })).toBe(5);
  });

  it('answers 413 for an oversize body sent chunked, without a Content-Length', async () => {
    const requester = unique('big');
    // node:http rather than fetch: the server answers as soon as the limit is crossed, and the
    // client must be able to read that answer while it is still sending.
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request(`${dispatch.baseUrl}/api/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-agent-id': requester, 'transfer-encoding': 'chunked' },
      });
      request.on('response', (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      });
      // Writes after the answer may hit a closed socket; only a failure before it matters.
      request.on('error', reject);
      request.write('{"title":"t","scope":"x","context":"');
      const chunk = 'x'.repeat(64 * 1024);
      for (let sent = 0; sent <= 2 * MiB; sent += chunk.length) request.write(chunk);
      request.end('"}');
    });
    expect(status).toBe(413);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'payload_too_large' } });
    expect(await countTasks(db, { requester })).toBe(0);
  });

  describe('Idempotency-Key', () => {
    it('returns the first task, with 200, when the same requester repeats a key', async () => {
      const requester = unique('idem');
      const key = unique('key');
      const first = await api('POST', '/api/v1/tasks', { agent: requester, headers: { 'idempotency-key': key }, body: { title: 'first', scope: 'x' } });
      expect(first.status).toBe(201);
      const again = await api('POST', '/api/v1/tasks', { agent: requester, headers: { 'idempotency-key': key }, body: { title: 'second', scope: 'y' } });
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body.id).toBe(first.body.id);
      expect(again.body.title).toBe('first');
      expect(await countTasks(db, { requester })).toBe(1);
      expect(await eventNames(db, first.body.id)).toEqual(['created']);
    });

    it('gives a different requester with the same key a task of its own', async () => {
      const key = unique('key');
      const a = await api('POST', '/api/v1/tasks', { agent: unique('idem-a'), headers: { 'idempotency-key': key }, body: { title: 't', scope: 'x' } });
      const b = await api('POST', '/api/v1/tasks', { agent: unique('idem-b'), headers: { 'idempotency-key': key }, body: { title: 't', scope: 'x' } });
      expect([a.status, b.status]).toEqual([201, 201]);
      expect(b.body.id).not.toBe(a.body.id);
    });

    it('creates exactly one task when the same request arrives many times at once', async () => {
      const requester = unique('idem');
      const key = unique('key');
      const responses = await Promise.all(
        Array.from({ length: 12 }, () =>
          api('POST', '/api/v1/tasks', { agent: requester, headers: { 'idempotency-key': key }, body: { title: 't', scope: 'x' } }),
        ),
      );
      const statuses = responses.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
      expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
      expect(await countTasks(db, { requester })).toBe(1);
    });

    it('creates a new task for each request without a key', async () => {
      const requester = unique('nokey');
      await createTask(api, {}, requester);
      await createTask(api, {}, requester);
      expect(await countTasks(db, { requester })).toBe(2);
    });

    it('refuses a key longer than 200 characters', async () => {
      const response = await api('POST', '/api/v1/tasks', { headers: { 'idempotency-key': 'k'.repeat(201) }, body: { title: 't', scope: 'x' } });
      expectError(response, 400, 'validation_failed', 'Idempotency-Key');
    });
  });
});

describe('creates under load (group commit)', () => {
  it('gives each of many concurrent creates its own task, exactly as asked', async () => {
    const requester = unique('burst');
    const responses = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        api('POST', '/api/v1/tasks', { agent: requester, body: { title: `burst ${i}`, scope: 'burst', priority: (i % 5) + 1, context: { i } } }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 201));
    responses.forEach((r, i) => expect(r.body).toMatchObject({ title: `burst ${i}`, priority: (i % 5) + 1, context: { i }, requester }));
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(150);
    const events = await db
      .selectFrom('dispatch_task_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('event', '=', 'created')
      .where('task_id', 'in', responses.map((r) => r.body.id as string))
      .executeTakeFirstOrThrow();
    expect(Number(events.n)).toBe(150);
  });

  it('a task the database refuses fails alone, not the batch it was written with', async () => {
    const requester = unique('batch');
    const task = (title: string, priority: number) => ({
      requester,
      title,
      description: null,
      scope: 'batch',
      priority,
      context: null,
      timeout_ms: 1_000,
      heartbeat_timeout_ms: null,
      start_timeout_ms: null,
      max_retries: 0,
      parent_id: null,
      idempotency_key: null,
    });
    // The first writes go out at once; the rest queue behind them and are written as one batch.
    const outcomes = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => insertTaskBatched(db, task(`t${i}`, i === 7 ? 9 : 3))));
    expect(outcomes.map((o) => o.status)).toEqual(outcomes.map((_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
    expect((outcomes[7] as PromiseRejectedResult).reason).toMatchObject({ code: '23514' });
    expect(await countTasks(db, { requester })).toBe(11);
  });
});
