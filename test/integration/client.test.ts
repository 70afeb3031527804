import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DispatchApiError, DispatchClient } from '../../src/client/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { lossyProxy, type LossyProxy } from '../helpers/lossy-proxy.js';
import { assignDirectly } from '../helpers/tasks.js';

/**
 * The typed client against a real Dispatch in token mode (real PostgreSQL), through a loopback
 * proxy that can lose an answer after Dispatch acted on the request: what a killed replica or a
 * network fault does to a client.
 */

let database: TestDatabase;
let dispatch: TestDispatch;
let proxy: LossyProxy;
let admin: DispatchClient;

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' } });
  proxy = await lossyProxy(dispatch.baseUrl);
  admin = new DispatchClient({ url: dispatch.baseUrl, token: ADMIN_TOKEN });
});
afterAll(async () => {
  await proxy?.close();
  await dispatch?.stop();
  await database?.drop();
});

async function clientFor(agent: string, role: 'worker' | 'requester', url = proxy.url): Promise<DispatchClient> {
  const { token } = await admin.credentials.issue(agent, { role });
  return new DispatchClient({ url, token, retry: { baseDelayMs: 10 } });
}

const completedEvents = async (taskId: string) =>
  (await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_task_events WHERE task_id = ${taskId} AND event = 'completed'`.execute(database.handle.db)).rows[0]!.n;

describe('create', () => {
  it('makes one task when the answer to the first try is lost: the retry carries the same Idempotency-Key', async () => {
    const planner = await clientFor('planner-1', 'requester');
    proxy.loseAnswerOnce('POST', /^\/api\/v1\/tasks$/);
    const before = proxy.forwarded.length;
    const task = await planner.tasks.create({ title: 'once only', scope: 'client-test' });
    expect(proxy.forwarded.slice(before)).toEqual(['POST /api/v1/tasks', 'POST /api/v1/tasks']);
    expect(task).toMatchObject({ title: 'once only', status: 'pending', replayed: true });
    const rows = await database.handle.db.selectFrom('dispatch_tasks').select('id').where('title', '=', 'once only').execute();
    expect(rows.map((r) => r.id)).toEqual([task.id]);
  });
});

describe('the attempt', () => {
  it('the client received is sent with progress and complete; an attempt taken away is refused as stale', async () => {
    const planner = await clientFor('planner-2', 'requester');
    const worker = await clientFor('worker-2', 'worker');
    const created = await planner.tasks.create({ title: 'leased', scope: 'client-test', max_retries: 3 });
    await assignDirectly(database.handle.db, created.id, 'worker-2');
    const held = await worker.tasks.get(created.id);
    expect(held.attempt).toBe(1);
    expect(worker.attemptOf(created.id)).toBe(1);
    await worker.tasks.progress(created.id, { percent: 10 });

    // Meanwhile Dispatch moved the task on: failed back to pending and assigned again (attempt 2).
    const other = await clientFor('worker-2', 'worker', dispatch.baseUrl);
    await other.tasks.fail(created.id, 'went away', { attempt: 1 });
    await assignDirectly(database.handle.db, created.id, 'worker-2');

    // The first client still holds attempt 1 and sends it: refused, nothing changed.
    const stale = (await worker.tasks.complete(created.id, { late: true }).catch((e: unknown) => e)) as DispatchApiError;
    expect(stale).toBeInstanceOf(DispatchApiError);
    expect(stale).toMatchObject({ status: 409, code: 'stale_attempt' });
    expect(await completedEvents(created.id)).toBe(0);

    // Once it reads the task again it holds attempt 2, and completes it.
    expect((await worker.tasks.get(created.id)).attempt).toBe(2);
    const done = await worker.tasks.complete(created.id, { ok: true });
    expect(done).toMatchObject({ status: 'completed', attempt: 2, result: { ok: true } });
    const trail = await admin.tasks.events(created.id);
    expect(trail.filter((e) => e.event === 'progress').map((e) => e.attempt)).toEqual([1]);
    expect(trail.filter((e) => e.event === 'completed').map((e) => e.attempt)).toEqual([2]);
    expect(worker.attemptOf(created.id)).toBeUndefined();
  });

  it('makes a complete whose answer was lost a success, from the audit trail, not a 409', async () => {
    const planner = await clientFor('planner-3', 'requester');
    const worker = await clientFor('worker-3', 'worker');
    const created = await planner.tasks.create({ title: 'lost answer', scope: 'client-test' });
    await assignDirectly(database.handle.db, created.id, 'worker-3');
    await worker.tasks.get(created.id);
    proxy.loseAnswerOnce('POST', /\/complete$/);
    const done = await worker.tasks.complete(created.id, { n: 1 });
    expect(done).toMatchObject({ id: created.id, status: 'completed', result: { n: 1 } });
    expect(proxy.forwarded.filter((f) => f === `POST /api/v1/tasks/${created.id}/complete`)).toHaveLength(2);
    expect(await completedEvents(created.id)).toBe(1);
  });
});

describe('errors', () => {
  it("are thrown with the API's status, code, message and fields", async () => {
    const missing = (await admin.tasks.get('00000000-0000-4000-8000-000000000000').catch((e: unknown) => e)) as DispatchApiError;
    expect(missing).toMatchObject({ status: 404, code: 'not_found' });
    const planner = await clientFor('planner-4', 'requester');
    const invalid = (await planner.tasks.create({ title: '', scope: 'x', priority: 9 }).catch((e: unknown) => e)) as DispatchApiError;
    expect(invalid).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(invalid.fields.sort()).toEqual(['priority', 'title']);
    const nobody = new DispatchClient({ url: dispatch.baseUrl, token: 'dsp_wrong' });
    const refused = (await nobody.stats().catch((e: unknown) => e)) as DispatchApiError;
    expect(refused).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(refused.message).toMatch(/not a valid credential/);
  });
});

describe('every route', () => {
  it('answers through the client: agents, drain, credentials, stats, placement, list, cancel', async () => {
    const worker = await clientFor('worker-5', 'worker');
    await worker.agents.register('worker-5', { capabilities: ['client-test'], max_concurrent: 2 });
    expect((await admin.agents.list()).map((a) => a.name)).toContain('worker-5');
    expect(await admin.agents.get('worker-5')).toMatchObject({ name: 'worker-5', capabilities: ['client-test'], max_concurrent: 2 });
    expect(await admin.agents.drain('worker-5')).toMatchObject({ drained: true });
    expect(await admin.agents.undrain('worker-5')).toMatchObject({ drained: false });
    const issued = await admin.credentials.issue('observer-5', { role: 'observer' });
    expect((await admin.credentials.list('observer-5')).map((c) => c.id)).toEqual([issued.id]);
    expect(await admin.credentials.revoke('observer-5', issued.id)).toMatchObject({ id: issued.id, revoked_by: 'bootstrap' });
    const planner = await clientFor('planner-5', 'requester');
    const created = await planner.tasks.create({ title: 'to cancel', scope: 'nobody-serves-this' });
    expect(await planner.tasks.placement(created.id)).toMatchObject({ task_id: created.id, status: 'pending' });
    const page = await planner.tasks.list({ requester: 'planner-5', limit: 1 });
    expect(page.tasks.map((t) => t.id)).toEqual([created.id]);
    expect(await planner.tasks.update(created.id, { context: { more: 1 } })).toMatchObject({ context: { more: 1 } });
    expect(await planner.tasks.cancel(created.id)).toMatchObject({ status: 'cancelled' });
    expect(await admin.stats()).toMatchObject({ cancelled: expect.any(Number), window_seconds: 900 });
    const all: string[] = [];
    for await (const t of admin.tasks.all({ scope: 'client-test', limit: 2 })) all.push(t.id);
    expect(all.length).toBeGreaterThanOrEqual(3);
  });
});
