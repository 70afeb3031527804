import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { createTask, expectError } from '../helpers/tasks.js';
import { useTaskApi, countTasks } from '../helpers/task-api.js';

/**
 * Who may call what: X-Agent-ID, the admin token (and its absence), and the per-agent rate limit.
 * Through real HTTP on a real PostgreSQL.
 */
const { database, dispatch, api, db } = await useTaskApi();

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
  let own: TestDatabase;
  beforeAll(async () => {
    // A database of its own: the only replica there, so it enforces the whole limit (replicas on
    // one database share it).
    own = await createTestDatabase();
    limited = await startTestDispatch(own.url, { server: { rate_limit_per_minute: 3 } });
    limitedApi = apiClient(limited.baseUrl);
  });
  afterAll(async () => {
    await limited?.stop();
    await own?.drop();
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
    const before = await countTasks(own.handle.db, { requester });
    expectError(await limitedApi('POST', '/api/v1/tasks', { agent: requester, body: { title: 't', scope: 'x' } }), 429, 'rate_limited');
    expect(await countTasks(own.handle.db, { requester })).toBe(before);

    expect((await limitedApi('GET', '/api/v1/tasks?limit=1', { agent: 'quiet' })).status).toBe(200);
  });

  it('counts requests that carry no identity against their address, never against an agent', async () => {
    for (let i = 0; i < 3; i++) {
      expectError(await limitedApi('GET', '/api/v1/tasks', { agent: null }), 401, 'unauthorized');
    }
    const refused = await limitedApi('GET', '/api/v1/tasks', { agent: null });
    expectError(refused, 429, 'rate_limited');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    // Same address, but a caller that says who it is: its own budget, untouched.
    expect((await limitedApi('GET', '/api/v1/tasks?limit=1', { agent: 'fresh' })).status).toBe(200);
  });

  it('does not limit the ops port', async () => {
    for (let i = 0; i < 6; i++) {
      expect((await fetch(`${limited.opsUrl}/health`)).status).toBe(200);
    }
  });
});
