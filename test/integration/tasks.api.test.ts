import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { insertTaskBatched } from '../../src/tasks/task.batcher.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { assignDirectly, BROKER_NOTES, createTask, eventNames, expectError, insertTasks } from '../helpers/tasks.js';

/**
 * The task API through real HTTP on a real PostgreSQL: every endpoint of the v1 contract, each
 * error path, and the races the state machine must win.
 */

let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.handle.db;
  dispatch = await startTestDispatch(database.url);
  api = apiClient(dispatch.baseUrl, 'requester-1');
});
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

const MiB = 1024 * 1024;
const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

async function countTasks(where: { requester: string }): Promise<number> {
  const row = await db
    .selectFrom('dispatch_tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('requester', '=', where.requester)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A task assigned to `worker`, created by requester-1. */
async function assignedTask(worker: string, body: Record<string, unknown> = {}) {
  const task = await createTask(api, body);
  return await assignDirectly(db, task.id, worker);
}

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
    const task = await createTask(api, {
      priority: 1,
      timeout_ms: 5_000,
      heartbeat_timeout_ms: 1_000,
      start_timeout_ms: 60_000,
      max_retries: 4,
      parent_id: parent.id,
      requester: 'requester-1',
    });
    expect(task).toMatchObject({
      priority: 1,
      timeout_ms: 5_000,
      heartbeat_timeout_ms: 1_000,
      start_timeout_ms: 60_000,
      max_retries: 4,
      parent_id: parent.id,
    });
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
    expect(await countTasks({ requester })).toBe(0);
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
    expect(await countTasks({ requester })).toBe(5);
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
    expect(await countTasks({ requester })).toBe(0);
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
      expect(await countTasks({ requester })).toBe(1);
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
      expect(await countTasks({ requester })).toBe(1);
    });

    it('creates a new task for each request without a key', async () => {
      const requester = unique('nokey');
      await createTask(api, {}, requester);
      await createTask(api, {}, requester);
      expect(await countTasks({ requester })).toBe(2);
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
    expect(await countTasks({ requester })).toBe(11);
  });
});

describe('GET /api/v1/tasks/:id', () => {
  it('returns the task', async () => {
    const task = await createTask(api, { title: 'read me' });
    const response = await api('GET', `/api/v1/tasks/${task.id}`, { agent: 'anyone-else' });
    expect(response.status).toBe(200);
    // updated_at moves when the assignment loop notes that nobody can take the task.
    const { updated_at: _read, ...read } = response.body;
    const { updated_at: _created, ...created } = task;
    expect(read).toEqual(created);
  });

  it('accepts the id in upper case', async () => {
    const task = await createTask(api);
    const response = await api('GET', `/api/v1/tasks/${task.id.toUpperCase()}`);
    expect(response.status).toBe(200);
    expect(response.body.id).toBe(task.id);
  });

  it.each(['not-a-uuid', '12345', `${randomUUID()}0`, "' OR 1=1 --"])('answers 400 for the malformed id %j', async (id) => {
    expectError(await api('GET', `/api/v1/tasks/${encodeURIComponent(id)}`), 400, 'validation_failed', 'id');
  });

  it('answers 404 for an unknown task', async () => {
    expectError(await api('GET', `/api/v1/tasks/${randomUUID()}`), 404, 'not_found');
  });
});

describe('GET /api/v1/tasks', () => {
  it('filters by status, requester, assignee, scope and parent_id', async () => {
    const requester = unique('lister');
    const scope = unique('scope');
    const parent = await createTask(api, { scope }, requester);
    const children = [await createTask(api, { scope, parent_id: parent.id }, requester), await createTask(api, { scope: 'other', parent_id: parent.id }, requester)];
    const worker = unique('worker');
    await assignDirectly(db, children[0].id, worker);
    const otherRequester = await createTask(api, { scope }, unique('stranger'));

    const ids = async (query: string) => {
      const response = await api('GET', `/api/v1/tasks?${query}`);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      return (response.body.tasks as { id: string }[]).map((t) => t.id).sort();
    };
    expect(await ids(`requester=${requester}`)).toEqual([parent.id, ...children.map((c) => c.id)].sort());
    expect(await ids(`scope=${scope}`)).toEqual([parent.id, children[0].id, otherRequester.id].sort());
    expect(await ids(`scope=${scope.toUpperCase()}`)).toEqual([parent.id, children[0].id, otherRequester.id].sort());
    expect(await ids(`parent_id=${parent.id}`)).toEqual(children.map((c) => c.id).sort());
    expect(await ids(`assignee=${worker}`)).toEqual([children[0].id]);
    expect(await ids(`requester=${requester}&status=assigned`)).toEqual([children[0].id]);
    expect(await ids(`requester=${requester}&status=pending`)).toEqual([parent.id, children[1].id].sort());
    expect(await ids(`requester=${requester}&status=completed`)).toEqual([]);
    expect(await ids(`requester=${requester}&scope=other&parent_id=${parent.id}`)).toEqual([children[1].id]);
  });

  it('returns 50 tasks by default, at most 500, newest first', async () => {
    const requester = unique('many');
    await insertTasks(db, 520, { requester });
    const byDefault = await api('GET', `/api/v1/tasks?requester=${requester}`);
    expect(byDefault.status).toBe(200);
    expect(byDefault.body.tasks).toHaveLength(50);
    expect(byDefault.body.next_cursor).toEqual(expect.any(String));
    const max = await api('GET', `/api/v1/tasks?requester=${requester}&limit=500`);
    expect(max.body.tasks).toHaveLength(500);
    const small = await api('GET', `/api/v1/tasks?requester=${requester}&limit=1`);
    expect(small.body.tasks).toHaveLength(1);
  });

  it.each([
    ['limit=501', 'query.limit'],
    ['limit=0', 'query.limit'],
    ['limit=-1', 'query.limit'],
    ['limit=ten', 'query.limit'],
    ['status=done', 'query.status'],
    ['parent_id=xyz', 'query.parent_id'],
    ['sort=asc', 'query.sort'],
  ])('answers 400 for %s', async (query, field) => {
    expectError(await api('GET', `/api/v1/tasks?${query}`), 400, 'validation_failed', field);
  });

  it('pages through every task exactly once, newest first, with next_cursor', async () => {
    const requester = unique('pager');
    // Tasks created one by one (distinct timestamps) and in bulk (one shared timestamp, so the
    // order falls to the id): a cursor must not skip or repeat either kind.
    for (let i = 0; i < 9; i++) await createTask(api, { title: `solo ${i}` }, requester);
    await insertTasks(db, 120, { requester });
    for (let i = 0; i < 8; i++) await createTask(api, { title: `late ${i}` }, requester);
    await insertTasks(db, 40, { requester });
    const expected = await db
      .selectFrom('dispatch_tasks')
      .select('id')
      .where('requester', '=', requester)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    expect(expected).toHaveLength(177);

    const seen: string[] = [];
    const createdAts: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `requester=${requester}&limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await api('GET', `/api/v1/tasks?${query}`);
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      for (const task of page.body.tasks) {
        seen.push(task.id);
        createdAts.push(Date.parse(task.created_at));
      }
      cursor = page.body.next_cursor;
      pages += 1;
      expect(pages).toBeLessThan(30);
    } while (cursor);

    expect(pages).toBe(18);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expected.map((r) => r.id));
    expect(createdAts).toEqual([...createdAts].sort((a, b) => b - a));
  });

  it('ends with an empty page and no cursor when the last page was full', async () => {
    const requester = unique('exact');
    await insertTasks(db, 4, { requester });
    const first = await api('GET', `/api/v1/tasks?requester=${requester}&limit=4`);
    expect(first.body.tasks).toHaveLength(4);
    const rest = await api('GET', `/api/v1/tasks?requester=${requester}&limit=4&cursor=${first.body.next_cursor}`);
    expect(rest.status).toBe(200);
    expect(rest.body).toEqual({ tasks: [], next_cursor: null });
  });

  it.each([
    ['garbage', 'not-a-cursor'],
    ['base64 of non-JSON', Buffer.from('hello').toString('base64url')],
    ['a JSON cursor with a bad date', Buffer.from(JSON.stringify(['yesterday', randomUUID()])).toString('base64url')],
    ['a JSON cursor with a bad id', Buffer.from(JSON.stringify([new Date().toISOString(), 'x'])).toString('base64url')],
    ['a JSON object', Buffer.from('{}').toString('base64url')],
  ])('answers 400 for a bad cursor: %s', async (_case, cursor) => {
    expectError(await api('GET', `/api/v1/tasks?cursor=${encodeURIComponent(cursor)}`), 400, 'validation_failed', 'query.cursor');
  });
});

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
    const task = await assignedTask('worker-c');
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
    const task = await assignedTask('worker-e');
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

describe('worker calls: progress, complete, fail', () => {
  it('progress moves an assigned task to running once, stamping started_at, and keeps the payload', async () => {
    const task = await assignedTask('worker-p');
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
    const task = await assignedTask('worker-p2');
    const response = await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p2' });
    expect(response.status).toBe(200);
    expect(response.body.status).toBe('running');
  });

  it('progress refuses a body that is not an object, or a bad attempt', async () => {
    const task = await assignedTask('worker-p3');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p3', body: [1] }), 400, 'validation_failed');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p3', body: { attempt: 'one' } }), 400, 'validation_failed', 'attempt');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-p3', rawBody: '{' }), 400, 'invalid_json');
  });

  it('complete stores the result and stamps completed_at, from assigned or running', async () => {
    const assigned = await assignedTask('worker-q');
    const done = await api('POST', `/api/v1/tasks/${assigned.id}/complete`, { agent: 'worker-q', body: { result: { answer: 42 } } });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'completed', result: { answer: 42 }, assignee: 'worker-q' });
    expect(done.body.completed_at).toEqual(expect.any(String));

    const running = await assignedTask('worker-q');
    await api('POST', `/api/v1/tasks/${running.id}/progress`, { agent: 'worker-q', body: {} });
    const alsoDone = await api('POST', `/api/v1/tasks/${running.id}/complete`, { agent: 'worker-q', body: {} });
    expect(alsoDone.status).toBe(200);
    expect(alsoDone.body).toMatchObject({ status: 'completed', result: null });
  });

  it('complete refuses unknown fields and bad JSON', async () => {
    const task = await assignedTask('worker-r');
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
    const task = await assignedTask('worker-t');
    expect((await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-t', body: { result: 'first' } })).status).toBe(200);
    expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-t', body: { result: 'second' } }), 409, 'conflict');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-t', body: { error: 'late' } }), 409, 'conflict');
    expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-t', body: {} }), 409, 'conflict');
    const after = await api('GET', `/api/v1/tasks/${task.id}`);
    expect(after.body).toMatchObject({ status: 'completed', result: 'first', error: null });
    expect(await eventNames(db, task.id)).toEqual(['created', 'assigned', 'completed']);
  });

  it('answers 409 when completing a cancelled task', async () => {
    const task = await assignedTask('worker-u');
    expect((await api('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled' } })).status).toBe(200);
    expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-u', body: { result: 1 } }), 409, 'conflict');
    expect((await api('GET', `/api/v1/tasks/${task.id}`)).body.status).toBe('cancelled');
  });

  it.each(['complete', 'fail', 'progress'])('answers 403 when an agent other than the assignee calls %s', async (action) => {
    const task = await assignedTask('worker-v');
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
      const task = await assignedTask('worker-x');
      expect(task.attempt).toBe(1);
      expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-x', body: { result: 1, attempt: 2 } }), 409, 'stale_attempt');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-x', body: { attempt: 7 } }), 409, 'stale_attempt');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-x', body: { error: 'e', attempt: 3 } }), 409, 'stale_attempt');
      expect((await api('GET', `/api/v1/tasks/${task.id}`)).body.status).toBe('assigned');
      const done = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-x', body: { result: 1, attempt: 1 } });
      expect(done.status).toBe(200);
    });

    it('refuses a call from an earlier attempt after the task was given to the same agent again', async () => {
      const task = await assignedTask('worker-y', { max_retries: 2 });
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
      const task = await assignedTask('worker-z');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-z', body: { attempt: 0 } }), 400, 'validation_failed', 'attempt');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-z', body: { attempt: '1' } }), 400, 'validation_failed', 'attempt');
    });
  });

  describe('fail', () => {
    it('sends a task with retries left back to pending, with retry_count+1 and a backoff', async () => {
      const task = await assignedTask('worker-f', { max_retries: 1 });
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
      const task = await assignedTask('worker-h', { max_retries: 3 });
      const response = await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-h', body: { error: 'bad input', retryable: false } });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'failed', retry_count: 0, error: 'bad input' });
      expect(await eventNames(db, task.id)).toEqual(['created', 'assigned', 'failed']);
    });

    it('fails for good when max_retries is 0', async () => {
      const task = await assignedTask('worker-h', { max_retries: 0 });
      const response = await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-h', body: { error: 'boom' } });
      expect(response.body).toMatchObject({ status: 'failed', retry_count: 0 });
    });

    it.each([
      ['a missing error', {}, 'error'],
      ['an empty error', { error: '' }, 'error'],
      ['a non-boolean retryable', { error: 'x', retryable: 'no' }, 'retryable'],
      ['an unknown field', { error: 'x', reason: 'y' }, 'reason'],
    ])('answers 400 for %s', async (_case, body, field) => {
      const task = await assignedTask('worker-i');
      expectError(await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: 'worker-i', body }), 400, 'validation_failed', field);
    });
  });

  describe('races', () => {
    it('two completions of one task by its assignee: exactly one wins, and its result is stored', async () => {
      for (let round = 0; round < 15; round++) {
        const task = await assignedTask('racer');
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
        const task = await assignedTask('racer-2');
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

describe('GET /api/v1/tasks/:id/events', () => {
  it('returns the audit trail in order: one event per state change', async () => {
    const task = await createTask(api, { title: 'audited' });
    await assignDirectly(db, task.id, 'worker-audit');
    await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-audit', body: { step: 1 } });
    await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-audit', body: { step: 2 } });
    // Refused calls leave no trace.
    await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'someone-else', body: {} });
    await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-audit', body: { attempt: 9 } });
    await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-audit', body: { result: { ok: true } } });
    await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-audit', body: { result: 'again' } });

    const response = await api('GET', `/api/v1/tasks/${task.id}/events`, { agent: 'an-auditor' });
    expect(response.status).toBe(200);
    const events = (response.body.events as Array<Record<string, any>>).filter((e) => !BROKER_NOTES.has(e.event));
    expect(events.map((e) => [e.event, e.agent_id, e.attempt])).toEqual([
      ['created', 'requester-1', 0],
      ['assigned', 'worker-audit', 1],
      ['progress', 'worker-audit', 1],
      ['progress', 'worker-audit', 1],
      ['completed', 'worker-audit', 1],
    ]);
    expect(events[0]!.payload).toMatchObject({ task_id: task.id, requester: 'requester-1', scope: 'testing' });
    expect(events[4]!.payload).toEqual({ task_id: task.id, result: { ok: true } });
    for (const event of events) {
      expect(event.task_id).toBe(task.id);
      expect(event.event_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(Date.parse(event.created_at)).not.toBeNaN();
    }
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it('writes the event in the same transaction as the change: no event, no change', async () => {
    const task = await assignedTask('worker-atomic');
    await sql`
      CREATE FUNCTION test_refuse_completed_event() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.event = 'completed' THEN RAISE EXCEPTION 'event store refuses completed'; END IF;
        RETURN NEW;
      END $$`.execute(db);
    await sql`CREATE TRIGGER test_refuse_completed BEFORE INSERT ON dispatch_task_events
              FOR EACH ROW EXECUTE FUNCTION test_refuse_completed_event()`.execute(db);
    try {
      const response = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-atomic', body: { result: 1 } });
      expectError(response, 500, 'internal');
      const stored = await api('GET', `/api/v1/tasks/${task.id}`);
      expect(stored.body).toMatchObject({ status: 'assigned', result: null, completed_at: null });
    } finally {
      await sql`DROP TRIGGER test_refuse_completed ON dispatch_task_events`.execute(db);
      await sql`DROP FUNCTION test_refuse_completed_event()`.execute(db);
    }
    const retried = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-atomic', body: { result: 1 } });
    expect(retried.status).toBe(200);
  });

  it('answers 400 for a bad id and 404 for an unknown task', async () => {
    expectError(await api('GET', '/api/v1/tasks/bad/events'), 400, 'validation_failed', 'id');
    expectError(await api('GET', `/api/v1/tasks/${randomUUID()}/events`), 404, 'not_found');
  });
});

describe('identity and admin', () => {
  const routes: Array<[string, () => string]> = [
    ['POST', () => '/api/v1/tasks'],
    ['GET', () => '/api/v1/tasks'],
    ['GET', () => `/api/v1/tasks/${randomUUID()}`],
    ['PATCH', () => `/api/v1/tasks/${randomUUID()}`],
    ['GET', () => `/api/v1/tasks/${randomUUID()}/events`],
    ['POST', () => `/api/v1/tasks/${randomUUID()}/complete`],
    ['POST', () => `/api/v1/tasks/${randomUUID()}/fail`],
    ['POST', () => `/api/v1/tasks/${randomUUID()}/progress`],
    ['GET', () => '/api/v1/stats'],
  ];

  it.each(routes)('%s %s answers 401 without X-Agent-ID, even for an admin', async (method, path) => {
    const body = method === 'GET' ? undefined : { title: 't', scope: 'x' };
    const response = await api(method, path(), { agent: null, admin: true, body });
    expectError(response, 401, 'unauthorized', 'X-Agent-ID');
  });

  it.each(['', 'has space', 'x'.repeat(201), 'tab\there'])('answers 401 for the X-Agent-ID %j', async (agent) => {
    const response = await fetch(`${dispatch.baseUrl}/api/v1/tasks`, { headers: { 'x-agent-id': agent } });
    expect(response.status).toBe(401);
  });

  it('creates nothing for a request without X-Agent-ID', async () => {
    const before = await db.selectFrom('dispatch_tasks').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    await api('POST', '/api/v1/tasks', { agent: null, body: { title: 't', scope: 'x' } });
    const after = await db.selectFrom('dispatch_tasks').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
  });

  it('serves /api/v1/stats to an admin only', async () => {
    expect((await api('GET', '/api/v1/stats', { admin: true })).status).toBe(200);
    expectError(await api('GET', '/api/v1/stats'), 401, 'unauthorized', 'Authorization');
    expectError(await api('GET', '/api/v1/stats', { token: 'not-the-token' }), 401, 'unauthorized');
    expectError(await api('GET', '/api/v1/stats', { token: `${ADMIN_TOKEN}x` }), 401, 'unauthorized');
    expectError(await api('GET', '/api/v1/stats', { headers: { authorization: ADMIN_TOKEN } }), 401, 'unauthorized');
    expectError(await api('GET', '/api/v1/stats', { headers: { authorization: `Basic ${ADMIN_TOKEN}` } }), 401, 'unauthorized');
  });

  it('answers unknown routes with 404 in the error shape', async () => {
    expectError(await api('GET', '/api/v1/nothing-here'), 404, 'not_found');
    expectError(await api('DELETE', `/api/v1/tasks/${randomUUID()}`), 404, 'not_found');
  });

  it('echoes a sane X-Request-ID and makes one up otherwise', async () => {
    const given = await api('GET', '/api/v1/tasks?limit=1', { headers: { 'x-request-id': 'req-123' } });
    expect(given.headers.get('x-request-id')).toBe('req-123');
    const made = await api('GET', '/api/v1/tasks?limit=1', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('with no admin token configured', () => {
  let closed: TestDispatch;
  let closedApi: ApiClient;
  beforeAll(async () => {
    closed = await startTestDispatch(database.url, { server: { admin_token: '' } });
    closedApi = apiClient(closed.baseUrl, 'requester-1');
  });
  afterAll(async () => {
    await closed?.stop();
  });

  it('refuses admin routes (403) whatever token is presented', async () => {
    expectError(await closedApi('GET', '/api/v1/stats'), 403, 'forbidden');
    expectError(await closedApi('GET', '/api/v1/stats', { admin: true }), 403, 'forbidden');
    expectError(await closedApi('GET', '/api/v1/stats', { headers: { authorization: 'Bearer ' } }), 403, 'forbidden');
  });

  it('gives nobody admin powers over other agents’ tasks', async () => {
    const task = await createTask(closedApi);
    expectError(await closedApi('PATCH', `/api/v1/tasks/${task.id}`, { agent: 'operator', admin: true, body: { status: 'cancelled' } }), 403, 'forbidden');
    expect((await closedApi('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled' } })).status).toBe(200);
  });
});

describe('rate limit', () => {
  let limited: TestDispatch;
  let limitedApi: ApiClient;
  beforeAll(async () => {
    limited = await startTestDispatch(database.url, { server: { rate_limit_per_minute: 3 } });
    limitedApi = apiClient(limited.baseUrl);
  });
  afterAll(async () => {
    await limited?.stop();
  });

  it('answers 429 with Retry-After once an agent has used its minute, and only for that agent', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await limitedApi('GET', '/api/v1/tasks?limit=1', { agent: 'chatty' })).status).toBe(200);
    }
    const refused = await limitedApi('GET', '/api/v1/tasks?limit=1', { agent: 'chatty' });
    expectError(refused, 429, 'rate_limited');
    const retryAfter = refused.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    // 3 a minute is one token every 20 s.
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(19);
    expect(Number(retryAfter)).toBeLessThanOrEqual(20);
    // Every kind of call counts, writes included, and a refused create writes nothing.
    const requester = 'chatty';
    const before = await countTasks({ requester });
    expectError(await limitedApi('POST', '/api/v1/tasks', { agent: requester, body: { title: 't', scope: 'x' } }), 429, 'rate_limited');
    expect(await countTasks({ requester })).toBe(before);

    expect((await limitedApi('GET', '/api/v1/tasks?limit=1', { agent: 'quiet' })).status).toBe(200);
  });

  it('does not count requests that carry no identity', async () => {
    for (let i = 0; i < 5; i++) {
      expectError(await limitedApi('GET', '/api/v1/tasks', { agent: null }), 401, 'unauthorized');
    }
    expect((await limitedApi('GET', '/api/v1/tasks?limit=1', { agent: 'fresh' })).status).toBe(200);
  });

  it('does not limit the ops port', async () => {
    for (let i = 0; i < 6; i++) {
      expect((await fetch(`${limited.opsUrl}/health`)).status).toBe(200);
    }
  });
});

describe('GET /api/v1/stats', () => {
  let statsDatabase: TestDatabase;
  let statsDispatch: TestDispatch;
  let statsApi: ApiClient;
  beforeAll(async () => {
    statsDatabase = await createTestDatabase();
    statsDispatch = await startTestDispatch(statsDatabase.url);
    statsApi = apiClient(statsDispatch.baseUrl, 'requester-s');
  });
  afterAll(async () => {
    await statsDispatch?.stop();
    await statsDatabase?.drop();
  });

  it('counts the queue by status and averages completion time', async () => {
    const sdb = statsDatabase.handle.db;
    const empty = await statsApi('GET', '/api/v1/stats', { admin: true });
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({ pending: 0, assigned: 0, running: 0, completed: 0, failed: 0, avg_completion_ms: null });

    await createTask(statsApi);
    await createTask(statsApi);
    await assignDirectly(sdb, (await createTask(statsApi)).id, 'w1');
    const running = await assignDirectly(sdb, (await createTask(statsApi)).id, 'w1');
    await statsApi('POST', `/api/v1/tasks/${running.id}/progress`, { agent: 'w1', body: {} });
    const completed: string[] = [];
    for (let i = 0; i < 2; i++) {
      const task = await assignDirectly(sdb, (await createTask(statsApi)).id, 'w2');
      expect((await statsApi('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'w2', body: {} })).status).toBe(200);
      completed.push(task.id);
    }
    const failed = await assignDirectly(sdb, (await createTask(statsApi, { max_retries: 0 })).id, 'w2');
    await statsApi('POST', `/api/v1/tasks/${failed.id}/fail`, { agent: 'w2', body: { error: 'x' } });
    await statsApi('PATCH', `/api/v1/tasks/${(await createTask(statsApi)).id}`, { body: { status: 'cancelled' } });
    // Completion times of exactly 2 s and 4 s.
    await sql`UPDATE dispatch_tasks SET created_at = completed_at - interval '2 seconds' WHERE id = ${completed[0]}`.execute(sdb);
    await sql`UPDATE dispatch_tasks SET created_at = completed_at - interval '4 seconds' WHERE id = ${completed[1]}`.execute(sdb);

    const stats = await statsApi('GET', '/api/v1/stats', { admin: true });
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({
      pending: 2,
      assigned: 1,
      running: 1,
      completed: 2,
      failed: 1,
      cancelled: 1,
      timeout: 0,
      avg_completion_ms: 3000,
      window_seconds: 900,
    });
    expect(Date.parse(stats.body.timestamp)).not.toBeNaN();
  });

  it('reports /ready as 503 when the schema is not fully migrated', async () => {
    expect((await fetch(`${statsDispatch.opsUrl}/ready`)).status).toBe(200);
    await sql`DELETE FROM kysely_migration`.execute(statsDatabase.handle.db);
    const response = await fetch(`${statsDispatch.opsUrl}/ready`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'not ready' });
  });
});

describe('ops port', () => {
  it('/health answers while the process is alive', async () => {
    const response = await fetch(`${dispatch.opsUrl}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('/ready answers 200 when the database is reachable and migrated', async () => {
    const response = await fetch(`${dispatch.opsUrl}/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('/metrics serves Prometheus text with requests by route and status, and task transitions', async () => {
    await createTask(api);
    await api('GET', `/api/v1/tasks/${randomUUID()}`);
    const response = await fetch(`${dispatch.opsUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toContain('# TYPE dispatch_http_requests_total counter');
    expect(text).toMatch(/dispatch_http_requests_total\{method="POST",route="\/api\/v1\/tasks",status="201"\} [1-9]\d*/);
    expect(text).toMatch(/dispatch_http_requests_total\{method="GET",route="\/api\/v1\/tasks\/:id",status="404"\} [1-9]\d*/);
    expect(text).toMatch(/dispatch_http_request_duration_seconds_bucket\{le="0.1",method="POST",route="\/api\/v1\/tasks"\} [1-9]\d*/);
    expect(text).toMatch(/dispatch_task_transitions_total\{event="created"\} [1-9]\d*/);
    expect(text).toContain('dispatch_process_');
  });

  it('does not serve the API on the ops port, nor the ops routes on the API port', async () => {
    expect((await fetch(`${dispatch.opsUrl}/api/v1/tasks`, { headers: { 'x-agent-id': 'a' } })).status).toBe(404);
    expect((await fetch(`${dispatch.baseUrl}/metrics`)).status).toBe(404);
  });
});
