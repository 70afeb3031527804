import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { agentRowsForComparison } from '../helpers/agent-rows.js';
import { assignDirectly } from '../helpers/tasks.js';

/**
 * Impersonation, generated: in token mode, requests under every identity that is not entitled to
 * a task (another requester, another worker, an observer, no credential, a made-up or revoked
 * token, a real token with somebody else's X-Agent-ID) against every route that changes a task
 * or an agent. None may get a 2xx or a 5xx, and the database must show nothing changed.
 */
let database: TestDatabase;
let dispatch: TestDispatch;

interface Identity {
  name: string;
  headers: Record<string, string>;
}
let intruders: Identity[] = [];
let taskIds: { pending: string; held: string; failed: string };

async function call(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const response = await fetch(`${dispatch.baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.text() };
}

async function issue(agent: string, role: string): Promise<{ id: string; token: string }> {
  const issued = await call('POST', `/api/v1/agents/${agent}/credentials`, { authorization: `Bearer ${ADMIN_TOKEN}` }, { role });
  expect(issued.status, issued.body).toBe(201);
  return JSON.parse(issued.body) as { id: string; token: string };
}

/** What an intruder must not be able to change: the tasks' and the victim agent's rows. */
async function snapshot(): Promise<string> {
  const db = database.handle.db;
  const tasks = await db.selectFrom('dispatch_tasks').selectAll().where('id', 'in', Object.values(taskIds)).orderBy('id').execute();
  const agents = await agentRowsForComparison(db, ['victim-worker']);
  const events = await db.selectFrom('dispatch_task_events').select(['task_id', 'event']).where('task_id', 'in', Object.values(taskIds)).orderBy('id').execute();
  const credentials = await db.selectFrom('dispatch_credentials').select(['id', 'revoked_at']).orderBy('id').execute();
  return JSON.stringify({ tasks, agents, events, credentials });
}

beforeAll(async () => {
  database = await createTestDatabase();
  // The victim agent must not be declared stopped by silence while the property runs.
  dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' }, assignment: { agent_heartbeat_timeout_ms: 3_600_000 } });
  const requester = await issue('victim-requester', 'requester');
  const worker = await issue('victim-worker', 'worker');
  const registered = await call('PUT', '/api/v1/agents/victim-worker', { authorization: `Bearer ${worker.token}` }, { capabilities: ['secret-work'], status: 'ready' });
  expect(registered.status, registered.body).toBe(200);
  const create = async () => {
    const created = await call('POST', '/api/v1/tasks', { authorization: `Bearer ${requester.token}` }, { title: 'private', scope: 'elsewhere', context: { secret: 1 } });
    expect(created.status, created.body).toBe(201);
    return (JSON.parse(created.body) as { id: string }).id;
  };
  const [pending, held, failed] = [await create(), await create(), await create()];
  await assignDirectly(database.handle.db, held, 'victim-worker');
  await assignDirectly(database.handle.db, failed, 'victim-worker');
  const fail = await call('POST', `/api/v1/tasks/${failed}/fail`, { authorization: `Bearer ${worker.token}` }, { error: 'x', retryable: false });
  expect(fail.status, fail.body).toBe(200);
  taskIds = { pending, held, failed };

  const otherRequester = await issue('mallory-requester', 'requester');
  const otherWorker = await issue('mallory-worker', 'worker');
  const observer = await issue('watcher', 'observer');
  const revoked = await issue('victim-requester', 'requester');
  await call('DELETE', `/api/v1/agents/victim-requester/credentials/${revoked.id}`, { authorization: `Bearer ${ADMIN_TOKEN}` });
  intruders = [
    { name: 'another requester', headers: { authorization: `Bearer ${otherRequester.token}` } },
    { name: 'another worker', headers: { authorization: `Bearer ${otherWorker.token}` } },
    { name: 'an observer', headers: { authorization: `Bearer ${observer.token}` } },
    { name: 'no credential, claiming the victim', headers: { 'x-agent-id': 'victim-worker' } },
    { name: 'a made-up token', headers: { authorization: 'Bearer dsp_made_up_token_0000000000000000000000000000' } },
    { name: "the victim's revoked token", headers: { authorization: `Bearer ${revoked.token}` } },
    { name: "another worker's token with the victim's X-Agent-ID", headers: { authorization: `Bearer ${otherWorker.token}`, 'x-agent-id': 'victim-worker' } },
    { name: "another requester's token with the victim's X-Agent-ID", headers: { authorization: `Bearer ${otherRequester.token}`, 'x-agent-id': 'victim-requester' } },
  ];
}, 60_000);
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

type Which = keyof typeof taskIds;
const attempts = fc.constantFrom<{ name: string; request: (id: (w: Which) => string) => [string, string, unknown?] }>(
  { name: 'cancel', request: (id) => ['PATCH', `/api/v1/tasks/${id('pending')}`, { status: 'cancelled' }] },
  { name: 'cancel held', request: (id) => ['PATCH', `/api/v1/tasks/${id('held')}`, { status: 'cancelled' }] },
  { name: 'rewrite context', request: (id) => ['PATCH', `/api/v1/tasks/${id('pending')}`, { context: { secret: 'stolen' } }] },
  { name: 'complete', request: (id) => ['POST', `/api/v1/tasks/${id('held')}/complete`, { result: 'forged' }] },
  { name: 'complete with attempt', request: (id) => ['POST', `/api/v1/tasks/${id('held')}/complete`, { result: 'forged', attempt: 1 }] },
  { name: 'fail', request: (id) => ['POST', `/api/v1/tasks/${id('held')}/fail`, { error: 'forged', retryable: false }] },
  { name: 'progress', request: (id) => ['POST', `/api/v1/tasks/${id('held')}/progress`, { pct: 50 }] },
  { name: 'requeue', request: (id) => ['POST', `/api/v1/tasks/${id('failed')}/requeue`] },
  { name: 'bulk cancel', request: () => ['POST', '/api/v1/tasks/cancel', { filter: { requester: 'victim-requester' }, limit: 10 }] },
  { name: 'bulk requeue', request: () => ['POST', '/api/v1/tasks/requeue', { filter: { requester: 'victim-requester' }, limit: 10 }] },
  { name: 'stop the victim agent', request: () => ['PUT', '/api/v1/agents/victim-worker', { capabilities: ['secret-work'], status: 'stopped' }] },
  { name: 'lift its limit', request: () => ['PUT', '/api/v1/agents/victim-worker', { capabilities: ['secret-work'], status: 'ready', max_concurrent: 100000 }] },
  { name: 'drain it', request: () => ['POST', '/api/v1/agents/victim-worker/drain'] },
  { name: 'issue a credential for it', request: () => ['POST', '/api/v1/agents/victim-worker/credentials', { role: 'worker' }] },
);

describe('impersonation (generated)', () => {
  it('never lets an identity change a task or agent it is not entitled to, and never answers 5xx', async () => {
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 1_000 }), attempts, async (who, attempt) => {
        const intruder = intruders[who % intruders.length]!;
        const [method, path, body] = attempt.request((w) => taskIds[w]);
        const response = await call(method, path, intruder.headers, body);
        const context = `${intruder.name}: ${attempt.name} -> ${response.status} ${response.body}`;
        expect(response.status, context).toBeGreaterThanOrEqual(400);
        expect(response.status, context).toBeLessThan(500);
        expect(await snapshot(), context).toBe(before);
      }),
      { numRuns: 150 },
    );
  });
});
