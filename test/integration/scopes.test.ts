import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueTokens } from '../helpers/credentials.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient } from '../helpers/http.js';
import { readStream } from '../helpers/nats-server.js';
import { useDispatchOnNats } from '../helpers/nats-dispatch.js';
import { expectError, insertTasks } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Scopes as a resource (GET/PATCH /api/v1/scopes): pause, max_running and max_starts_per_minute
 * as an operator and a worker see them, on one replica, real PostgreSQL and NATS. The races
 * between replicas are in replicas.scopes.test.ts.
 */

const env = useDispatchOnNats((url) => ({ hermes: { url } }), 'requester-1');

const db = () => env.database.handle.db;

async function register(agent: string, capabilities: string[], maxConcurrent = 50) {
  const response = await env.api('PUT', `/api/v1/agents/${agent}`, { agent, body: { capabilities, max_concurrent: maxConcurrent } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
}

async function create(scope: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const response = await env.api('POST', '/api/v1/tasks', { body: { title: `task ${i}`, scope } });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    ids.push(response.body.id);
  }
  return ids;
}

async function patchScope(scope: string, body: unknown) {
  return await env.api('PATCH', `/api/v1/scopes/${encodeURIComponent(scope)}`, { admin: true, body });
}

async function statuses(scope: string): Promise<Record<string, number>> {
  const { rows } = await sql<{ status: string; n: number }>`
    SELECT status, count(*)::int AS n FROM dispatch_tasks WHERE scope = ${scope} GROUP BY status`.execute(db());
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

async function waitingBecause(taskId: string): Promise<string[]> {
  const response = await env.api('GET', `/api/v1/tasks/${taskId}/placement`, { admin: true });
  expect(response.status).toBe(200);
  return response.body.waiting_because ?? [];
}

async function assigneeOf(taskId: string): Promise<string> {
  return (await db().selectFrom('dispatch_tasks').select('assignee').where('id', '=', taskId).executeTakeFirstOrThrow()).assignee!;
}

describe('GET /api/v1/scopes', () => {
  it('shows depth by status, the oldest pending age, pause and limits, from the counters', async () => {
    await insertTasks(db(), 3, { scope: 'listing' });
    await insertTasks(db(), 2, { scope: 'listing', status: 'running', assignee: 'nobody-1' });
    await sql`UPDATE dispatch_tasks SET created_at = now() - interval '90 seconds' WHERE scope = 'listing' AND status = 'pending'`.execute(db());
    expect((await patchScope('listing', { max_running: 7 })).status).toBe(200);

    const all = await env.api('GET', '/api/v1/scopes', { admin: true });
    expect(all.status).toBe(200);
    const listing = all.body.scopes.find((s: { scope: string }) => s.scope === 'listing');
    expect(listing).toMatchObject({
      depth: { pending: 3, assigned: 0, running: 2 },
      paused: false,
      max_running: 7,
      max_starts_per_minute: null,
      starts_last_minute: null,
      held_because: null,
      // Header mode: the agent that called with the admin token.
      changed_by: 'requester-1',
    });
    expect(listing.oldest_pending_seconds).toBeGreaterThanOrEqual(89);

    const one = await env.api('GET', '/api/v1/scopes/Listing', { admin: true });
    expect({ ...one.body, oldest_pending_seconds: 0 }).toEqual({ ...listing, oldest_pending_seconds: 0 });
    // A scope nobody has used yet reads as empty and unrestricted (it can be paused in advance).
    const unseen = await env.api('GET', '/api/v1/scopes/never-used', { admin: true });
    expect(unseen.status).toBe(200);
    expect(unseen.body).toMatchObject({ scope: 'never-used', depth: { pending: 0, assigned: 0, running: 0 }, paused: false, max_running: null });
  });

  it('is for observers and admins only; PATCH for admins only (header mode: the admin token)', async () => {
    expectError(await env.api('GET', '/api/v1/scopes'), 401, 'unauthorized');
    expectError(await env.api('GET', '/api/v1/scopes/listing'), 401, 'unauthorized');
    expectError(await env.api('PATCH', '/api/v1/scopes/listing', { body: { paused: true } }), 401, 'unauthorized');
    expectError(await env.api('PATCH', '/api/v1/scopes/listing', { agent: null, body: { paused: true } }), 401, 'unauthorized');
    expect((await db().selectFrom('dispatch_scopes').select('paused').where('scope', '=', 'listing').executeTakeFirstOrThrow()).paused).toBe(false);
  });

  it('refuses a bad PATCH with a 400 naming the field, changing nothing', async () => {
    const cases: [unknown, string][] = [
      [{ paused: 'yes' }, 'paused'],
      [{ max_running: 0 }, 'max_running'],
      [{ max_running: 2.5 }, 'max_running'],
      [{ max_running: '3' }, 'max_running'],
      [{ max_starts_per_minute: -1 }, 'max_starts_per_minute'],
      [{ max_starts_per_minute: 3_000_000_000 }, 'max_starts_per_minute'],
      [{ pause: true }, 'pause'],
      [{}, 'paused'],
    ];
    for (const [body, field] of cases) expectError(await patchScope('listing', body), 400, 'validation_failed', field);
    expectError(await env.api('PATCH', '/api/v1/scopes/listing', { admin: true, rawBody: '{"paused":' }), 400, 'invalid_json');
    expectError(await env.api('PATCH', `/api/v1/scopes/${'x'.repeat(201)}`, { admin: true, body: { paused: true } }), 400, 'validation_failed', 'scope');
    expect(await db().selectFrom('dispatch_scopes').select(['paused', 'max_running', 'max_starts_per_minute']).where('scope', '=', 'listing').executeTakeFirst()).toEqual({
      paused: false,
      max_running: 7,
      max_starts_per_minute: null,
    });
  });
});

describe('pause', () => {
  it('accepts tasks but assigns none until resumed, says why, and audits and publishes both changes', async () => {
    await register('pause-agent', ['paused-work', 'other-work']);
    const paused = await patchScope('paused-work', { paused: true });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ scope: 'paused-work', paused: true, held_because: 'scope paused' });

    const waiting = await create('paused-work', 5);
    // Work of another scope on the same agent is assigned: passes ran and passed the paused scope over.
    const [other] = await create('other-work', 1);
    await waitFor(async () => (await statuses('other-work')).assigned === 1, { what: 'other scope assigned' });
    expect(await statuses('paused-work')).toEqual({ pending: 5 });
    expect(await waitingBecause(waiting[0]!)).toEqual(['scope paused']);
    expect(await assigneeOf(other!)).toBe('pause-agent');

    const resumedAt = Date.now();
    expect((await patchScope('paused-work', { paused: false })).body).toMatchObject({ paused: false, held_because: null });
    await waitFor(async () => (await statuses('paused-work')).assigned === 5, { what: 'resumed scope assigned', timeoutMs: 5_000 });
    expect(Date.now() - resumedAt).toBeLessThan(5_000);

    const { rows: audit } = await sql<{ event: string; changed_by: string; payload: Record<string, unknown> }>`
      SELECT event, changed_by, payload FROM dispatch_scope_events WHERE scope = 'paused-work' ORDER BY id`.execute(db());
    expect(audit.map((e) => [e.event, e.changed_by, e.payload.paused])).toEqual([
      ['paused', 'requester-1', true],
      ['resumed', 'requester-1', false],
    ]);
    const published = await waitFor(
      async () => {
        const found = (await readStream(env.nc)).filter((m) => m.subject.startsWith('swarm.dispatch.scope.') && (m.body as { scope?: string }).scope === 'paused-work');
        return found.length === 2 ? found : undefined;
      },
      { what: 'scope events on NATS' },
    );
    expect(published.map((m) => m.subject)).toEqual(['swarm.dispatch.scope.paused', 'swarm.dispatch.scope.resumed']);
    expect(published[0]!.body).toMatchObject({ scope: 'paused-work', paused: true, max_running: null, changed_by: 'requester-1' });
    expect(published[0]!.msgId).toBe((published[0]!.body as { event_id: string }).event_id);
  });

  it('records no event for a PATCH that changes nothing', async () => {
    await patchScope('idle-scope', { paused: true });
    await patchScope('idle-scope', { paused: true });
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_scope_events WHERE scope = 'idle-scope'`.execute(db());
    expect(rows[0]!.n).toBe(1);
  });
});

describe('max_running', () => {
  it('never has more of the scope assigned or running than the limit; a finish lets the next one start', async () => {
    await register('limit-agent', ['limited'], 20);
    expect((await patchScope('limited', { max_running: 2 })).body).toMatchObject({ max_running: 2 });
    const ids = await create('limited', 6);
    await waitFor(async () => (await statuses('limited')).assigned === 2, { what: 'two assigned' });
    const { rows: held } = await sql<{ id: string }>`SELECT id FROM dispatch_tasks WHERE scope = 'limited' AND status = 'assigned'`.execute(db());
    const { rows: waitingRows } = await sql<{ id: string }>`SELECT id FROM dispatch_tasks WHERE scope = 'limited' AND status = 'pending' LIMIT 1`.execute(db());
    expect(ids).toHaveLength(6);
    expect(await waitingBecause(waitingRows[0]!.id)).toEqual(['scope at its limit: 2 of 2 running']);
    const scope = await env.api('GET', '/api/v1/scopes/limited', { admin: true });
    expect(scope.body).toMatchObject({ depth: { pending: 4, assigned: 2, running: 0 }, held_because: 'scope at its limit: 2 of 2 running' });

    // The decision recorded with the assignment names the limit it was judged by.
    const { rows: placements } = await sql<{ placement: { scope_limits: unknown } }>`
      SELECT placement FROM dispatch_task_events WHERE task_id = ${held[0]!.id} AND event = 'assigned'`.execute(db());
    expect(placements[0]!.placement.scope_limits).toMatchObject({ max_running: 2, max_starts_per_minute: null, starts_before: null });

    const done = await env.api('POST', `/api/v1/tasks/${held[0]!.id}/complete`, { agent: 'limit-agent', body: {} });
    expect(done.status).toBe(200);
    await waitFor(async () => (await statuses('limited')).assigned === 2 && (await statuses('limited')).completed === 1, { what: 'next one started' });
    expect((await statuses('limited')).pending).toBe(3);

    // Raising the limit wakes the assigner: the rest start at once.
    await patchScope('limited', { max_running: null });
    await waitFor(async () => (await statuses('limited')).assigned === 5, { what: 'limit removed' });
  });
});

describe('max_starts_per_minute', () => {
  it('starts no more than the limit in a minute, even as they finish; a raised limit starts more', async () => {
    await register('rate-agent', ['rated'], 20);
    await patchScope('rated', { max_starts_per_minute: 3 });
    await create('rated', 6);
    await waitFor(async () => (await statuses('rated')).assigned === 3, { what: 'three started' });
    const { rows: started } = await sql<{ id: string }>`SELECT id FROM dispatch_tasks WHERE scope = 'rated' AND status = 'assigned'`.execute(db());
    for (const { id } of started) expect((await env.api('POST', `/api/v1/tasks/${id}/complete`, { agent: 'rate-agent', body: {} })).status).toBe(200);
    // The agent is free and the scope has nothing running, but three started in the last minute.
    await create('rated-probe', 1);
    await register('rate-agent', ['rated', 'rated-probe'], 20);
    await waitFor(async () => (await statuses('rated-probe')).assigned === 1, { what: 'a pass ran since the completions' });
    expect(await statuses('rated')).toEqual({ completed: 3, pending: 3 });
    const { rows: waitingRows } = await sql<{ id: string }>`SELECT id FROM dispatch_tasks WHERE scope = 'rated' AND status = 'pending' LIMIT 1`.execute(db());
    expect(await waitingBecause(waitingRows[0]!.id)).toEqual(['scope at its start rate: 3 of 3 starts in the last minute']);
    expect((await env.api('GET', '/api/v1/scopes/rated', { admin: true })).body).toMatchObject({ starts_last_minute: 3, max_starts_per_minute: 3 });

    expect((await patchScope('rated', { max_starts_per_minute: 5 })).body).toMatchObject({ max_starts_per_minute: 5 });
    await waitFor(async () => (await statuses('rated')).assigned === 2, { what: 'two more started' });
    expect((await statuses('rated')).pending).toBe(1);
  });
});

describe('metrics', () => {
  it('exports pause and limits per controlled scope', async () => {
    const text = await (await fetch(`${env.dispatch.opsUrl}/metrics`)).text();
    expect(text).toMatch(/^dispatch_scope_paused\{scope="idle-scope"\} 1$/m);
    expect(text).toMatch(/^dispatch_scope_paused\{scope="paused-work"\} 0$/m);
    expect(text).toMatch(/^dispatch_scope_max_running\{scope="listing"\} 7$/m);
    expect(text).toMatch(/^dispatch_scope_max_starts_per_minute\{scope="rated"\} 5$/m);
    expect(text).not.toMatch(/^dispatch_scope_max_running\{scope="rated"\}/m);
  });
});

describe('token mode', () => {
  let tokenDispatch: TestDispatch;
  beforeAll(async () => {
    tokenDispatch = await startTestDispatch(env.database.url, { auth: { mode: 'token' } });
  });
  afterAll(async () => {
    await tokenDispatch?.stop();
  });

  it('lets an observer read scopes but not change them; workers and requesters read nothing', async () => {
    const tokenApi = apiClient(tokenDispatch.baseUrl, 'nobody');
    const { watcher: observer, 'scoped-worker': worker } = await issueTokens(tokenApi, [
      ['watcher', 'observer'],
      ['scoped-worker', 'worker'],
    ]);
    expect((await tokenApi('GET', '/api/v1/scopes', { agent: null, token: observer })).status).toBe(200);
    expectError(await tokenApi('PATCH', '/api/v1/scopes/listing', { agent: null, token: observer, body: { paused: true } }), 403, 'forbidden');
    expectError(await tokenApi('GET', '/api/v1/scopes', { agent: null, token: worker }), 403, 'forbidden');
    const admin = await tokenApi('PATCH', '/api/v1/scopes/token-scope', { agent: null, token: ADMIN_TOKEN, body: { paused: true } });
    expect(admin.status).toBe(200);
    expect(admin.body.changed_by).toBe('bootstrap');
  });
});
