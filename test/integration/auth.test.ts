import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { assignDirectly, expectError } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Token mode against a hostile swarm: every call proves who it is with a credential, sees only
 * what it may, and changes only what its role allows. Each refusal is checked in the database too.
 */

let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' } });
  api = apiClient(dispatch.baseUrl, 'nobody');
});
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

const asAdmin = { agent: null, token: ADMIN_TOKEN } as const;

async function issue(agent: string, role: string, extra: Record<string, unknown> = {}): Promise<{ id: string; token: string }> {
  const response = await api('POST', `/api/v1/agents/${agent}/credentials`, { ...asAdmin, body: { role, ...extra } });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}

async function taskRow(id: string) {
  return await database.handle.db.selectFrom('dispatch_tasks').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

describe('credentials', () => {
  it('are issued by an admin, shown once, listed without the token, and revoked', async () => {
    const issued = await issue('coder-1', 'worker', { scopes: ['Code', 'review'] });
    expect(issued).toMatchObject({ agent_id: 'coder-1', role: 'worker', scopes: ['code', 'review'], created_by: 'bootstrap', revoked_at: null });
    expect(issued.token).toMatch(/^dsp_/);
    const listed = await api('GET', '/api/v1/agents/coder-1/credentials', asAdmin);
    expect(listed.status).toBe(200);
    expect(listed.body.credentials.map((c: { id: string }) => c.id)).toContain(issued.id);
    expect(JSON.stringify(listed.body)).not.toContain(issued.token);
    const revoked = await api('DELETE', `/api/v1/agents/coder-1/credentials/${issued.id}`, asAdmin);
    expect(revoked.body).toMatchObject({ id: issued.id, revoked_by: 'bootstrap' });
    // Refused within a second (each replica caches a lookup for half of one).
    await waitFor(async () => (await api('GET', '/api/v1/tasks', { agent: null, token: issued.token })).status === 401, {
      what: 'revoked token refused',
      timeoutMs: 1_000,
    });
  });

  it('are refused to anyone but an admin, and for unknown roles or past expiry dates', async () => {
    const requester = await issue('planner-x', 'requester');
    expectError(await api('POST', '/api/v1/agents/planner-x/credentials', { agent: null, token: requester.token, body: { role: 'admin' } }), 403, 'forbidden');
    expectError(await api('POST', '/api/v1/agents/a/credentials', { ...asAdmin, body: { role: 'root' } }), 400, 'validation_failed', 'role');
    expectError(
      await api('POST', '/api/v1/agents/a/credentials', { ...asAdmin, body: { role: 'worker', expires_at: '2001-01-01T00:00:00Z' } }),
      400,
      'validation_failed',
      'expires_at',
    );
  });
});

describe('a call without a valid credential', () => {
  it('gets 401 with no token, a wrong token, an expired one, and 403 naming another agent', async () => {
    expectError(await api('GET', '/api/v1/tasks', { agent: 'coder-1' }), 401, 'unauthorized');
    expectError(await api('GET', '/api/v1/tasks', { agent: null, token: 'dsp_not-a-real-token' }), 401, 'unauthorized');
    const soon = await issue('short-lived', 'observer', { expires_at: new Date(Date.now() + 1_500).toISOString() });
    expect((await api('GET', '/api/v1/tasks', { agent: null, token: soon.token })).status).toBe(200);
    await waitFor(async () => (await api('GET', '/api/v1/tasks', { agent: null, token: soon.token })).status === 401, { what: 'expired token refused' });
    const worker = await issue('coder-2', 'worker');
    expectError(await api('GET', '/api/v1/tasks', { agent: 'coder-1', token: worker.token }), 403, 'forbidden', 'X-Agent-ID');
    expect((await api('GET', '/api/v1/tasks', { agent: 'coder-2', token: worker.token })).status).toBe(200);
  });
});

describe('roles and object-level access', () => {
  let planner: { token: string };
  let other: { token: string };
  let coder: { token: string };
  let observer: { token: string };
  let taskId: string;

  beforeAll(async () => {
    planner = await issue('planner', 'requester', { scopes: ['review'] });
    other = await issue('other-planner', 'requester');
    coder = await issue('coder', 'worker', { scopes: ['review'] });
    observer = await issue('watcher', 'observer');
    const created = await api('POST', '/api/v1/tasks', { agent: null, token: planner.token, body: { title: 'review PR 7', scope: 'review', context: { secret: 's-1' } } });
    expect(created.status).toBe(201);
    taskId = created.body.id;
  });

  it('lets a requester create only in its scopes, and a worker not at all', async () => {
    expectError(await api('POST', '/api/v1/tasks', { agent: null, token: planner.token, body: { title: 't', scope: 'deploy' } }), 403, 'forbidden', 'scope');
    expectError(await api('POST', '/api/v1/tasks', { agent: null, token: coder.token, body: { title: 't', scope: 'review' } }), 403, 'forbidden');
  });

  it("hides a task from another requester as if it did not exist, and from its lists", async () => {
    expectError(await api('GET', `/api/v1/tasks/${taskId}`, { agent: null, token: other.token }), 404, 'not_found');
    expectError(await api('GET', `/api/v1/tasks/${taskId}/events`, { agent: null, token: other.token }), 404, 'not_found');
    expectError(await api('GET', `/api/v1/tasks/${taskId}/placement`, { agent: null, token: other.token }), 404, 'not_found');
    const listed = await api('GET', '/api/v1/tasks?scope=review', { agent: null, token: other.token });
    expect(listed.body.tasks.map((t: { id: string }) => t.id)).not.toContain(taskId);
    expectError(await api('PATCH', `/api/v1/tasks/${taskId}`, { agent: null, token: other.token, body: { status: 'cancelled' } }), 404, 'not_found');
    expect((await taskRow(taskId)).status).toBe('pending');
    // Its requester and an observer see it.
    expect((await api('GET', `/api/v1/tasks/${taskId}`, { agent: null, token: planner.token })).body.context).toEqual({ secret: 's-1' });
    expect((await api('GET', `/api/v1/tasks/${taskId}`, { agent: null, token: observer.token })).status).toBe(200);
  });

  it('lets only the assignee work on a task, and shows it to every agent that held it', async () => {
    const mallory = await issue('mallory', 'worker');
    await assignDirectly(database.handle.db, taskId, 'coder');
    // v1's answer to a worker reaching into another agent's attempt stays 403.
    expectError(await api('POST', `/api/v1/tasks/${taskId}/complete`, { agent: null, token: mallory.token, body: { result: { forged: true } } }), 403, 'forbidden');
    expectError(await api('POST', `/api/v1/tasks/${taskId}/complete`, { agent: null, token: planner.token, body: { result: { forged: true } } }), 403, 'forbidden');
    expect((await taskRow(taskId)).status).toBe('assigned');
    const done = await api('POST', `/api/v1/tasks/${taskId}/complete`, { agent: null, token: coder.token, body: { attempt: 1, result: { ok: true } } });
    expect(done.status).toBe(200);
    expect((await api('GET', `/api/v1/tasks/${taskId}`, { agent: null, token: coder.token })).body.result).toEqual({ ok: true });
  });

  it("lists a task to every agent that held an attempt of it and to its parent's requester, and to nobody else", async () => {
    const ids = (page: { body: { tasks: { id: string }[] } }) => page.body.tasks.map((t) => t.id);
    const first = await issue('first-holder', 'worker');
    const subtaskAuthor = await issue('sub-author', 'requester');
    const parent = await api('POST', '/api/v1/tasks', { agent: null, token: planner.token, body: { title: 'parent', scope: 'review', max_retries: 2 } });
    const child = await api('POST', '/api/v1/tasks', { agent: null, token: subtaskAuthor.token, body: { title: 'child', scope: 'docs', parent_id: parent.body.id } });
    expect(child.status, JSON.stringify(child.body)).toBe(201);
    // Attempt 1 goes to first-holder, who fails it; attempt 2 goes to coder.
    await assignDirectly(database.handle.db, parent.body.id, 'first-holder');
    const failed = await api('POST', `/api/v1/tasks/${parent.body.id}/fail`, { agent: null, token: first.token, body: { attempt: 1, error: 'flaky', retryable: true } });
    expect(failed.status, JSON.stringify(failed.body)).toBe(200);
    await database.handle.db.updateTable('dispatch_tasks').set({ not_before: null }).where('id', '=', parent.body.id).execute();
    await assignDirectly(database.handle.db, parent.body.id, 'coder');
    expect((await taskRow(parent.body.id)).assignee).toBe('coder');

    expect(ids(await api('GET', '/api/v1/tasks?limit=100', { agent: null, token: first.token }))).toEqual([parent.body.id]);
    expect((await api('GET', `/api/v1/tasks/${parent.body.id}`, { agent: null, token: first.token })).status).toBe(200);
    expect(ids(await api('GET', '/api/v1/tasks?limit=100', { agent: null, token: coder.token }))).toContain(parent.body.id);
    const planners = ids(await api('GET', '/api/v1/tasks?limit=100', { agent: null, token: planner.token }));
    expect(planners.slice(0, 2)).toEqual([child.body.id, parent.body.id]);
    // Filters and paging hold across the three ways in: one task a page, newest first.
    const firstPage = await api('GET', '/api/v1/tasks?limit=1', { agent: null, token: planner.token });
    expect(ids(firstPage)).toEqual([child.body.id]);
    const secondPage = await api('GET', `/api/v1/tasks?limit=1&cursor=${firstPage.body.next_cursor}`, { agent: null, token: planner.token });
    expect(ids(secondPage)).toEqual([parent.body.id]);
    expect(ids(await api('GET', '/api/v1/tasks?scope=docs', { agent: null, token: planner.token }))).toEqual([child.body.id]);
    for (const outsider of [other, subtaskAuthor]) {
      expect(ids(await api('GET', '/api/v1/tasks?limit=100', { agent: null, token: outsider.token }))).not.toContain(parent.body.id);
    }
  });

  it("shows other agents' names and loads in a placement only to observers and admins", async () => {
    await api('PUT', '/api/v1/agents/coder', { agent: null, token: coder.token, body: { capabilities: ['review'], status: 'ready' } });
    expect((await api('POST', '/api/v1/agents/coder/drain', asAdmin)).status).toBe(200);
    const waiting = await api('POST', '/api/v1/tasks', { agent: null, token: planner.token, body: { title: 'waits', scope: 'review' } });
    const asRequester = await api('GET', `/api/v1/tasks/${waiting.body.id}/placement`, { agent: null, token: planner.token });
    expect(asRequester.status).toBe(200);
    expect(asRequester.body).toMatchObject({ status: 'pending', candidates: [], other_candidates: 1 });
    expect(JSON.stringify(asRequester.body)).not.toContain('coder');
    const asObserver = await api('GET', `/api/v1/tasks/${waiting.body.id}/placement`, { agent: null, token: observer.token });
    expect(asObserver.body.candidates).toEqual([expect.objectContaining({ agent: 'coder', outcome: 'drained' })]);
  });

  it('lets a worker register only itself, only within its scopes; observers read agents, only admins drain', async () => {
    expectError(await api('PUT', '/api/v1/agents/coder-9', { agent: null, token: coder.token, body: { capabilities: ['review'] } }), 403, 'forbidden');
    const wide = await api('PUT', '/api/v1/agents/coder', { agent: null, token: coder.token, body: { capabilities: ['review', 'deploy', 'secrets'] } });
    expectError(wide, 400, 'validation_failed', 'capabilities');
    expect(wide.body.error.message).toContain('deploy, secrets');
    expectError(await api('PUT', '/api/v1/agents/planner', { agent: null, token: planner.token, body: { capabilities: ['review'] } }), 403, 'forbidden');
    const agents = await database.handle.db.selectFrom('dispatch_agents').select('name').execute();
    expect(agents.map((a) => a.name).sort()).toEqual(['coder']);
    expect((await api('GET', '/api/v1/agents', { agent: null, token: observer.token })).status).toBe(200);
    expectError(await api('GET', '/api/v1/agents', { agent: null, token: coder.token }), 403, 'forbidden');
    expectError(await api('POST', '/api/v1/agents/coder/drain', { agent: null, token: observer.token }), 403, 'forbidden');
    const admin = await issue('ops-1', 'admin');
    const drained = await api('POST', '/api/v1/agents/coder/drain', { agent: null, token: admin.token });
    expect(drained.status).toBe(200);
    const row = await database.handle.db.selectFrom('dispatch_agents').select('drained_by').where('name', '=', 'coder').executeTakeFirstOrThrow();
    expect(row.drained_by).toBe(admin.id);
  });
});

describe('rate limits', () => {
  it("are keyed on the credential: a flood under one spends nobody else's budget, nor its own heartbeats", async () => {
    // A database of its own: the only replica there, so it enforces the whole limit (a replica
    // shares the limit with the others alive on its database).
    const own = await createTestDatabase();
    const limited = await startTestDispatch(own.url, { auth: { mode: 'token' }, server: { rate_limit_per_minute: 5 } });
    try {
      const client = apiClient(limited.baseUrl, 'x');
      const issueThere = async (agent: string) =>
        (await client('POST', `/api/v1/agents/${agent}/credentials`, { ...asAdmin, body: { role: 'worker' } })).body as { token: string };
      const flooder = await issueThere('flooder');
      const bystander = await issueThere('bystander');
      let refused = 0;
      for (let i = 0; i < 10; i++) if ((await client('GET', '/api/v1/tasks', { agent: null, token: flooder.token })).status === 429) refused += 1;
      expect(refused).toBe(5);
      // Under the flooder's own name, without its token: 401, and its budget is not the point.
      expect((await client('GET', '/api/v1/tasks', { agent: 'bystander' })).status).toBe(401);
      expect((await client('GET', '/api/v1/tasks', { agent: null, token: bystander.token })).status).toBe(200);
      const heartbeat = await client('PUT', '/api/v1/agents/flooder', { agent: null, token: flooder.token, body: { capabilities: ['x'] } });
      expect(heartbeat.status).toBe(200);
    } finally {
      await limited.stop();
      await own.drop();
    }
  });
});

describe('the first admin', () => {
  it('is made in token mode when nobody could issue credentials, its token in a file only its user reads', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dispatch-bootstrap-'));
    const own = await createTestDatabase();
    const file = path.join(dir, 'admin-token');
    const replica = await startTestDispatch(own.url, { server: { admin_token: '' }, auth: { mode: 'token', bootstrap_token_file: file } });
    try {
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const token = readFileSync(file, 'utf8').trim();
      const client = apiClient(replica.baseUrl, 'x');
      const issued = await client('POST', '/api/v1/agents/coder/credentials', { agent: null, token, body: { role: 'worker' } });
      expect(issued.status).toBe(201);
    } finally {
      await replica.stop();
      await own.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
