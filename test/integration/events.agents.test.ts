import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSubject, type AgentLifecycle } from '../../src/events/subjects.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { jobQueued, waitForJobRun } from '../helpers/jobs.js';
import { waitFor } from '../helpers/wait.js';

/** Two replicas, so every notice is applied twice: the outcome must be the same as once. */
let nats: TestNatsServer;
let database: TestDatabase;
let replicas: TestDispatch[] = [];
let api: ApiClient;
let nc: NatsConnection;

const WAKE_TIMEOUT_MS = 1_000;

beforeAll(async () => {
  nats = await startNatsServer();
  database = await createTestDatabase();
  const overrides = {
    hermes: { url: nats.url },
    assignment: { wake_timeout_ms: WAKE_TIMEOUT_MS },
    worker: { poll_interval_ms: 50 },
  };
  replicas = [await startTestDispatch(database.url, overrides), await startTestDispatch(database.url, overrides)];
  api = apiClient(replicas[0]!.baseUrl);
  nc = await connect({ servers: nats.url });
  await waitFor(() => replicas.every((r) => r.dispatch.events.status().agentEvents), { what: 'subscriptions' });
});
afterAll(async () => {
  await nc?.close();
  await Promise.all(replicas.map((r) => r.stop()));
  await database?.drop();
  await nats?.dispose();
});

async function notify(agent: string, lifecycle: AgentLifecycle) {
  nc.publish(agentSubject(agent, lifecycle), JSON.stringify({ agent, at: new Date().toISOString() }));
  await nc.flush();
}

async function agentStatus(name: string): Promise<string | undefined> {
  const row = await database.handle.db.selectFrom('dispatch_agents').select('status').where('name', '=', name).executeTakeFirst();
  return row?.status;
}

async function waitForAgent(name: string, status: string) {
  await waitFor(async () => (await agentStatus(name)) === status, { what: `${name} ${status}` });
}

async function task(id: string) {
  return (await api('GET', `/api/v1/tasks/${id}`)).body;
}

async function eventsOf(id: string): Promise<string[]> {
  return (await api('GET', `/api/v1/tasks/${id}/events`)).body.events.map((e: { event: string }) => e.event);
}

async function register(name: string, capabilities: string[], status = 'ready') {
  expect((await api('PUT', `/api/v1/agents/${name}`, { agent: name, body: { capabilities, status } })).status).toBe(200);
}

describe('swarm.agent.<name>.<lifecycle>', () => {
  it('stopped returns the agent’s tasks to pending once, and started makes it take work again', async () => {
    await register('lc-coder', ['lc-code']);
    const created = await api('POST', '/api/v1/tasks', { body: { title: 'code it', scope: 'lc-code' } });
    await waitFor(async () => (await task(created.body.id)).status === 'assigned', { what: 'assigned' });

    await notify('lc-coder', 'stopped');
    await waitForAgent('lc-coder', 'stopped');
    const returned = await waitFor(async () => {
      const t = await task(created.body.id);
      return t.status === 'pending' ? t : undefined;
    }, { what: 'task back to pending' });
    expect(returned.reassign_count).toBe(1);

    await notify('lc-coder', 'started');
    await waitForAgent('lc-coder', 'ready');
    const reassigned = await waitFor(async () => {
      const t = await task(created.body.id);
      return t.status === 'assigned' ? t : undefined;
    }, { what: 'assigned again after started' });
    expect(reassigned.assignee).toBe('lc-coder');
    expect(reassigned.attempt).toBe(2);
    // Both replicas applied the notice; the task went back to pending once.
    expect((await eventsOf(created.body.id)).filter((e) => e === 'reassigned')).toHaveLength(1);
  });

  it('ready completes a pending wake: the reserved task stays with the agent past the wake timeout', async () => {
    await register('lc-sleeper', ['lc-dream'], 'sleeping');
    const created = await api('POST', '/api/v1/tasks', { body: { title: 'dream it', scope: 'lc-dream' } });
    await waitFor(async () => (await task(created.body.id)).status === 'assigned', { what: 'reserved for the sleeper' });
    await waitForAgent('lc-sleeper', 'starting');
    await waitFor(() => jobQueued(database.handle.db, 'wake-check:lc-sleeper'), { what: 'wake check scheduled' });
    await notify('lc-sleeper', 'ready');
    await waitForAgent('lc-sleeper', 'ready');
    // The wake check runs at wake_timeout_ms; with the agent ready it returns nothing.
    await waitForJobRun(database.handle.db, 'wake-check:lc-sleeper', { timeoutMs: WAKE_TIMEOUT_MS + 10_000 });
    const t = await task(created.body.id);
    expect(t.status).toBe('assigned');
    expect(t.assignee).toBe('lc-sleeper');
    expect(await eventsOf(created.body.id)).not.toContain('wake_timeout');
  });

  it('without the ready notice the same wake times out (the control for the test above)', async () => {
    await register('lc-oversleeper', ['lc-nap'], 'sleeping');
    const created = await api('POST', '/api/v1/tasks', { body: { title: 'nap it', scope: 'lc-nap' } });
    await waitFor(async () => (await eventsOf(created.body.id)).includes('wake_timeout'), { what: 'wake timeout', timeoutMs: 5_000 });
  });

  it('degraded and ready set the status; a notice for an agent Dispatch does not know creates nothing', async () => {
    await register('lc-flaky', ['lc-x']);
    await notify('lc-flaky', 'degraded');
    await waitForAgent('lc-flaky', 'degraded');
    await notify('lc-flaky', 'ready');
    await waitForAgent('lc-flaky', 'ready');

    await notify('lc-stranger', 'ready');
    // A later notice on the same connection is applied after it, so once it shows the first was handled.
    await notify('lc-flaky', 'degraded');
    await waitForAgent('lc-flaky', 'degraded');
    expect(await agentStatus('lc-stranger')).toBeUndefined();
  });
});
