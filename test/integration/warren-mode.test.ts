import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { FakePromptForge } from '../helpers/fake-promptforge.js';
import { FakeWarren } from '../helpers/fake-warren.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { jobQueued, settleAssignment, waitForJobRun } from '../helpers/jobs.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Dispatch wired to Warren and PromptForge (fakes serving real HTTP on loopback): the whole
 * assignment flow, waking, agents stopping, and both services failing and recovering.
 */
let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;
let warren: FakeWarren;
let forge: FakePromptForge;

beforeAll(async () => {
  database = await createTestDatabase();
  warren = await FakeWarren.start({ token: 'warren-secret', wakeDelayMs: 100 });
  forge = await FakePromptForge.start({ token: 'forge-secret' });
  dispatch = await startTestDispatch(database.url, {
    warren: { url: warren.url, token: 'warren-secret', state_ttl_ms: 100, timeout_ms: 300 },
    promptforge: { url: forge.url, token: 'forge-secret', persona_ttl_ms: 100, timeout_ms: 300 },
    assignment: { wake_timeout_ms: 1_500, wake_cooldown_ms: 60_000 },
    worker: { poll_interval_ms: 50 },
  });
  api = apiClient(dispatch.baseUrl);
});
afterAll(async () => {
  await dispatch?.stop();
  await Promise.all([warren?.close(), forge?.close()]);
  await database?.drop();
});

let counter = 0;
const fresh = (label: string) => `${label}-${(counter += 1)}-${Math.random().toString(36).slice(2, 7)}`;

function addAgent(name: string, scope: string, status: string, maxConcurrent?: number) {
  forge.setPersona({ name, capabilities: [scope], ...(maxConcurrent ? { maxConcurrent } : {}) });
  warren.setStatus(name, status);
}
async function agentRow(name: string) {
  return await database.handle.db.selectFrom('dispatch_agents').selectAll().where('name', '=', name).executeTakeFirst();
}
async function createTask(scope: string, extra: Record<string, unknown> = {}) {
  const response = await api('POST', '/api/v1/tasks', { body: { title: 'w', scope, ...extra } });
  expect(response.status).toBe(201);
  return response.body.id as string;
}
const getTask = async (id: string) => (await api('GET', `/api/v1/tasks/${id}`)).body;
const until = (id: string, predicate: (t: any) => boolean, what: string, timeoutMs = 6_000) =>
  waitFor(async () => {
    const task = await getTask(id);
    return predicate(task) ? task : undefined;
  }, { what, timeoutMs });

describe('warren mode', () => {
  it('assigns by PromptForge capabilities and Warren status, with per-persona limits', async () => {
    const scope = fresh('Deploy');
    const agent = fresh('deployer');
    addAgent(agent, scope.toUpperCase(), 'ready', 1);
    await waitFor(async () => (await agentRow(agent))?.status === 'ready', { what: 'sync' });
    const first = await createTask(scope);
    const second = await createTask(scope);
    expect((await until(first, (t) => t.status === 'assigned', 'first')).assignee).toBe(agent);
    await settleAssignment([dispatch]);
    expect((await getTask(second)).status).toBe('pending');
    // Only the Warren/PromptForge list calls: never a call per task or per candidate.
    expect(warren.callsTo('GET', `/admin/agents/${agent}`)).toHaveLength(0);
    expect(warren.callsTo('GET', '/admin/agents').every((c) => c.authorization === 'Bearer warren-secret')).toBe(true);
  });

  it('wakes a sleeping winner through Warren and keeps the task reserved for it', async () => {
    const scope = fresh('wake');
    const agent = fresh('sleeper');
    addAgent(agent, scope, 'sleeping');
    await waitFor(async () => (await agentRow(agent))?.status === 'sleeping', { what: 'sync' });
    const id = await createTask(scope);
    expect((await until(id, (t) => t.status === 'assigned', 'reservation')).assignee).toBe(agent);
    await waitFor(() => warren.wakes.includes(agent), { what: 'wake call' });
    // The wake check is scheduled before Warren is called; it is what would take the task back.
    expect(await jobQueued(database.handle.db, `wake-check:${agent}`)).toBe(true);
    await waitFor(async () => (await agentRow(agent))?.status === 'ready', { what: 'agent up' });
    await waitForJobRun(database.handle.db, `wake-check:${agent}`);
    expect(await getTask(id)).toMatchObject({ status: 'assigned', assignee: agent, attempt: 1 });
  });

  it('returns the task when the agent does not come up within wake_timeout_ms', async () => {
    const scope = fresh('slow-wake');
    const agent = fresh('heavy-sleeper');
    addAgent(agent, scope, 'sleeping');
    await waitFor(async () => (await agentRow(agent))?.status === 'sleeping', { what: 'sync' });
    warren.wakeDelayMs = 60_000;
    try {
      const id = await createTask(scope, { max_retries: 0 });
      await until(id, (t) => t.status === 'assigned', 'reservation');
      const back = await until(id, (t) => t.status === 'pending', 'wake timeout');
      expect(back.retry_count).toBe(0);
      expect((await agentRow(agent))?.avoid_until?.getTime()).toBeGreaterThan(Date.now());
    } finally {
      warren.wakeDelayMs = 100;
    }
  });

  it('moves the work of an agent Warren reports stopped to another agent, at once', async () => {
    const scope = fresh('stop');
    const doomed = fresh('doomed');
    addAgent(doomed, scope, 'ready');
    await waitFor(async () => (await agentRow(doomed))?.status === 'ready', { what: 'sync' });
    const id = await createTask(scope, { max_retries: 0 });
    await until(id, (t) => t.assignee === doomed, 'assignment');
    const survivor = fresh('survivor');
    addAgent(survivor, scope, 'ready');
    warren.stop(doomed);
    const moved = await until(id, (t) => t.assignee === survivor && t.status === 'assigned', 'reassignment');
    expect(moved).toMatchObject({ retry_count: 0, reassign_count: 1 });
  });

  it('keeps tasks waiting while Warren is down, and assigns them when it recovers', async () => {
    const scope = fresh('outage');
    const agent = fresh('steady');
    addAgent(agent, scope, 'ready');
    await waitFor(async () => (await agentRow(agent))?.status === 'ready', { what: 'sync' });
    warren.failWith('error');
    await waitFor(async () => (await agentRow(agent))?.status === 'unknown', { what: 'agents unknown after grace', timeoutMs: 8_000 });
    const id = await createTask(scope);
    await settleAssignment([dispatch]);
    expect((await getTask(id)).status).toBe('pending');
    const metrics = await fetch(`${dispatch.opsUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/dispatch_integration_up\{service="warren"\} 0/);
    warren.recover();
    expect((await until(id, (t) => t.status === 'assigned', 'assignment after recovery', 8_000)).assignee).toBe(agent);
  });

  it('keeps the last known capabilities while PromptForge is down', async () => {
    const scope = fresh('forge-outage');
    const agent = fresh('known');
    addAgent(agent, scope, 'ready');
    await waitFor(async () => (await agentRow(agent))?.capabilities.includes(scope), { what: 'sync' });
    const asked = forge.callsTo('GET', '/api/v1/personas').length;
    forge.failWith('garbage');
    try {
      // PromptForge has been asked (and failed) since, and a sync after that kept the cache.
      await waitFor(() => forge.callsTo('GET', '/api/v1/personas').length > asked + 1, { what: 'failed persona reads' });
      const id = await createTask(scope);
      expect((await until(id, (t) => t.status === 'assigned', 'assignment on cached personas')).assignee).toBe(agent);
    } finally {
      forge.recover();
    }
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_agents WHERE source = 'warren'`.execute(database.handle.db);
    expect(rows[0]!.n).toBeGreaterThan(0);
  });
});
