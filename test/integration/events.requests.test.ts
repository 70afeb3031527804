import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskPolicy } from '../../src/app.js';
import { createTaskFromRequest, requestIdempotencyKey } from '../../src/events/task-requests.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, testConfig, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient } from '../helpers/http.js';
import { readStream, startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';

/** Three replicas on one database and one (private) NATS server, as in production. */
let nats: TestNatsServer;
let database: TestDatabase;
let replicas: TestDispatch[] = [];
let nc: NatsConnection;

const STATS_INTERVAL_MS = 200;

beforeAll(async () => {
  nats = await startNatsServer();
  database = await createTestDatabase();
  replicas = await Promise.all(
    [1, 2, 3].map(() => startTestDispatch(database.url, { hermes: { url: nats.url, stats_interval_ms: STATS_INTERVAL_MS } })),
  );
  nc = await connect({ servers: nats.url });
  await waitFor(() => replicas.every((r) => r.dispatch.events.status().consumingRequests), { what: 'consumers attached' });
});
afterAll(async () => {
  await nc?.close();
  await Promise.all(replicas.map((r) => r.stop()));
  await database?.drop();
  await nats?.dispose();
});

const encode = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

async function tasksOf(requester: string) {
  return await database.handle.db.selectFrom('dispatch_tasks').selectAll().where('requester', '=', requester).execute();
}

async function metricSum(name: string, labels: string): Promise<number> {
  let total = 0;
  for (const replica of replicas) {
    const text = await (await fetch(`${replica.opsUrl}/metrics`)).text();
    const match = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text);
    total += Number(match?.[1] ?? 0);
  }
  return total;
}

describe('swarm.task.request with three replicas', () => {
  it('creates exactly one task per request, and publishes each created event once', async () => {
    const js = nc.jetstream();
    const count = 150;
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        js.publish('swarm.task.request', encode({ requester: 'swarm-planner', title: `request ${i}`, scope: 'nats', priority: 2, context: { i } })),
      ),
    );
    const tasks = await waitFor(
      async () => {
        const rows = await tasksOf('swarm-planner');
        return rows.length >= count ? rows : undefined;
      },
      { what: `${count} tasks`, timeoutMs: 20_000 },
    );
    // Let any straggling duplicate show itself before counting.
    await waitFor(async () => (await metricSum('dispatch_events_task_requests_total', 'outcome="created"')) === count, {
      what: 'request metrics',
    });
    expect((await tasksOf('swarm-planner')).length).toBe(count);
    expect(new Set(tasks.map((t) => (t.context as { i: number }).i)).size).toBe(count);
    expect(new Set(tasks.map((t) => t.idempotency_key)).size).toBe(count);
    expect(tasks.every((t) => t.priority === 2 && t.scope === 'nats' && t.idempotency_key?.startsWith('nats:DISPATCH_EVENTS:'))).toBe(true);

    // The shared consumer spread the work rather than one replica doing all of it.
    const perReplica = await Promise.all(
      replicas.map(async (r) => {
        const text = await (await fetch(`${r.opsUrl}/metrics`)).text();
        return Number(/^dispatch_events_task_requests_total\{outcome="created"\} (\S+)$/m.exec(text)?.[1] ?? 0);
      }),
    );
    expect(perReplica.filter((n) => n > 0).length).toBeGreaterThan(1);

    // Three publishers, one outbox: every created event in the stream once.
    await waitFor(
      async () => (await database.handle.pool.query('SELECT count(*)::int AS n FROM dispatch_event_outbox')).rows[0].n === 0,
      { what: 'outbox drained' },
    );
    const created = (await readStream(nc)).filter((m) => m.subject.endsWith('.created') && m.body.requester === 'swarm-planner');
    expect(created).toHaveLength(count);
    expect(new Set(created.map((m) => m.msgId)).size).toBe(count);
  });

  it('finds the task it already created when a request is delivered again (crash before ack)', async () => {
    const intake = { db: database.handle.db, policy: taskPolicy(testConfig()), metrics: createMetrics() };
    const message = { data: encode({ requester: 'redeliverer', title: 'once', scope: 'nats' }), streamSeq: 987_654, timestampNanos: 1_700_000_000_000 };
    const first = await createTaskFromRequest(intake, message);
    const again = await createTaskFromRequest(intake, message);
    expect(first.kind).toBe('created');
    expect(again.kind).toBe('replayed');
    if (first.kind === 'rejected' || again.kind === 'rejected') return;
    expect(again.task.id).toBe(first.task.id);
    expect(first.task.idempotency_key).toBe(requestIdempotencyKey(message));
    expect(await tasksOf('redeliverer')).toHaveLength(1);
  });
});

describe('rejected requests', () => {
  const cases: { name: string; body: unknown; code: string; field: string }[] = [
    { name: 'no title', body: { requester: 'bad-client', scope: 'nats' }, code: 'validation_failed', field: 'title' },
    { name: 'unknown field', body: { requester: 'bad-client', title: 't', scope: 'nats', colour: 'red' }, code: 'validation_failed', field: 'colour' },
    { name: 'priority out of range', body: { requester: 'bad-client', title: 't', scope: 'nats', priority: 9 }, code: 'validation_failed', field: 'priority' },
    { name: 'no requester', body: { title: 't', scope: 'nats' }, code: 'validation_failed', field: 'requester' },
    {
      name: 'unknown parent',
      body: { requester: 'bad-client', title: 't', scope: 'nats', parent_id: '00000000-0000-4000-8000-000000000000' },
      code: 'validation_failed',
      field: 'parent_id',
    },
    { name: 'not JSON', body: '{"title": ', code: 'invalid_json', field: '(body)' },
  ];

  it('publishes each one to swarm.dispatch.rejected with the reason, the details and the original, and creates nothing', async () => {
    const js = nc.jetstream();
    for (const c of cases) await js.publish('swarm.task.request', encode(c.body));
    const rejected = await waitFor(
      async () => {
        const found = (await readStream(nc)).filter((m) => m.subject === 'swarm.dispatch.rejected');
        return found.length >= cases.length ? found : undefined;
      },
      { what: 'rejections' },
    );
    expect(rejected).toHaveLength(cases.length);
    for (const c of cases) {
      const message = rejected.find((m) => JSON.stringify(m.body.original) === JSON.stringify(c.body));
      expect(message, c.name).toBeDefined();
      expect(message!.body, c.name).toMatchObject({
        code: c.code,
        reason: expect.any(String),
        event_id: expect.any(String),
        occurred_at: expect.any(String),
      });
      expect(message!.body.details.map((d: { field: string }) => d.field), c.name).toContain(c.field);
    }
    expect(await tasksOf('bad-client')).toHaveLength(0);
  });

  it('gives the same reasons as POST /api/v1/tasks for the same body', async () => {
    const api = apiClient(replicas[0]!.baseUrl, 'bad-client');
    const rejected = (await readStream(nc)).filter((m) => m.subject === 'swarm.dispatch.rejected');
    for (const c of cases.filter((x) => typeof x.body === 'object' && x.field !== 'requester')) {
      const response = await api('POST', '/api/v1/tasks', { body: c.body });
      const message = rejected.find((m) => JSON.stringify(m.body.original) === JSON.stringify(c.body))!;
      expect(response.status, c.name).toBe(400);
      expect(message.body.reason, c.name).toBe(response.body.error.message);
      expect(message.body.details, c.name).toEqual(response.body.error.details);
    }
  });
});

describe('swarm.dispatch.stats with three replicas', () => {
  it('is published once per interval, not once per replica', async () => {
    const statsMessages = async () => (await readStream(nc)).filter((m) => m.subject === 'swarm.dispatch.stats');
    const before = (await statsMessages()).length;
    const startedAt = Date.now();
    // Wait for ten more, however long they take, then compare with the time it took: one per
    // replica per interval would bring them three times too fast.
    const stats = await waitFor(async () => {
      const all = await statsMessages();
      return all.length - before >= 10 ? all : undefined;
    }, { what: 'ten more stats messages', intervalMs: 20 });
    const elapsedIntervals = (Date.now() - startedAt) / STATS_INTERVAL_MS;
    const published = stats.length - before;
    // One per interval boundary crossed (give or take the ones at the window's edges).
    expect(published).toBeGreaterThanOrEqual(Math.floor(elapsedIntervals) - 2);
    expect(published).toBeLessThanOrEqual(Math.ceil(elapsedIntervals) + 1);
    expect(new Set(stats.map((m) => m.msgId)).size).toBe(stats.length);
  });
});
