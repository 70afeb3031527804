import { randomBytes } from 'node:crypto';
import { connect, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TASK_REQUEST_SUBJECT } from '../../src/events/subjects.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { FakeOtlpCollector, spanAttribute } from '../helpers/fake-otlp-collector.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { readStream, startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Trace context: a W3C traceparent sent on create is kept with the task, handed to the assignee
 * (task JSON, NATS message headers), and Dispatch's create / assign / finish spans go to an OTLP
 * collector (a real HTTP server on loopback) as children of the caller's span.
 */
let nats: TestNatsServer;
let database: TestDatabase;
let dispatch: TestDispatch;
let collector: FakeOtlpCollector;
let api: ApiClient;
let nc: NatsConnection;

const SCOPE = 'traced-work';
const WORKER = 'trace-worker';
const newTrace = (flags = '01') => {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${flags}` };
};

beforeAll(async () => {
  nats = await startNatsServer();
  collector = new FakeOtlpCollector();
  const endpoint = await collector.listen();
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, {
    hermes: { url: nats.url },
    tracing: { otlp_endpoint: endpoint, otlp_headers: ['x-api-key=collector-secret'], service_name: 'dispatch-under-test' },
  });
  api = apiClient(dispatch.baseUrl, 'trace-requester');
  nc = await connect({ servers: nats.url });
  await waitFor(() => dispatch.dispatch.events.status().streamReady, { what: 'stream provisioned' });
  const registered = await api('PUT', `/api/v1/agents/${WORKER}`, { agent: WORKER, body: { capabilities: [SCOPE], status: 'ready', max_concurrent: 10 } });
  expect(registered.status).toBe(200);
});
afterAll(async () => {
  await nc?.close();
  await dispatch?.stop();
  await database?.drop();
  await collector?.close();
  await nats?.dispose();
});

async function assigned(id: string) {
  return await waitFor(
    async () => {
      const task = (await api('GET', `/api/v1/tasks/${id}`)).body;
      return task.status === 'assigned' ? task : undefined;
    },
    { what: `task ${id} assigned` },
  );
}

describe('a task created with a traceparent', () => {
  it('keeps it, hands it to the assignee, and exports create, assign and finish spans under the caller’s span', async () => {
    const trace = newTrace();
    const created = await api('POST', '/api/v1/tasks', { body: { title: 'traced', scope: SCOPE }, headers: { traceparent: trace.traceparent } });
    expect(created.status).toBe(201);
    expect(created.body.traceparent).toBe(trace.traceparent);
    const task = await assigned(created.body.id);
    expect(task.traceparent).toBe(trace.traceparent);
    const done = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: WORKER, body: { result: 'ok', attempt: task.attempt } });
    expect(done.status).toBe(200);

    const spans = await waitFor(() => (collector.spansOf(trace.traceId).length >= 3 ? collector.spansOf(trace.traceId) : undefined), {
      what: 'three spans at the collector',
    });
    expect(spans.map((s) => s.name).sort()).toEqual(['dispatch assign task', 'dispatch create task', 'dispatch task completed']);
    for (const span of spans) {
      expect(span.parentSpanId).toBe(trace.spanId);
      expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(span.service).toBe('dispatch-under-test');
      expect(spanAttribute(span, 'dispatch.task.id')).toBe(task.id);
      expect(BigInt(span.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(span.startTimeUnixNano));
    }
    const assign = spans.find((s) => s.name === 'dispatch assign task')!;
    expect(spanAttribute(assign, 'dispatch.assignee')).toBe(WORKER);
    expect(spanAttribute(assign, 'dispatch.attempt')).toBe(1);
    expect(BigInt(assign.startTimeUnixNano) / 1_000_000n).toBe(BigInt(Date.parse(task.created_at)));
    expect(collector.requestHeaders.every((h) => h['x-api-key'] === 'collector-secret')).toBe(true);

    const messages = await waitFor(
      async () => {
        const mine = (await readStream(nc)).filter((m) => m.subject.startsWith(`swarm.task.${task.id}.`));
        return mine.some((m) => m.subject.endsWith('.completed')) ? mine : undefined;
      },
      { what: 'the task’s events on NATS' },
    );
    expect(messages.map((m) => m.subject.split('.').at(-1))).toEqual(['created', 'assigned', 'completed']);
    expect(new Set(messages.map((m) => m.traceparent))).toEqual(new Set([trace.traceparent]));
  });

  it('marks the finish span of a failed attempt as an error', async () => {
    const trace = newTrace();
    const created = await api('POST', '/api/v1/tasks', { body: { title: 'fails', scope: SCOPE, max_retries: 0 }, headers: { traceparent: trace.traceparent } });
    const task = await assigned(created.body.id);
    await api('POST', `/api/v1/tasks/${task.id}/fail`, { agent: WORKER, body: { error: 'no', retryable: false, attempt: task.attempt } });
    const finish = await waitFor(() => collector.spansOf(trace.traceId).find((s) => s.name === 'dispatch task failed'), { what: 'the failure span' });
    expect(finish.status.code).toBe(2);
    expect(spanAttribute(finish, 'dispatch.outcome')).toBe('failed');
  });

  it('takes the traceparent header of a swarm.task.request message too', async () => {
    const trace = newTrace();
    const hdrs = headers();
    hdrs.set('traceparent', trace.traceparent);
    nc.publish(TASK_REQUEST_SUBJECT, JSON.stringify({ requester: 'nats-planner', title: 'from NATS', scope: SCOPE }), { headers: hdrs });
    const span = await waitFor(() => collector.spansOf(trace.traceId).find((s) => s.name === 'dispatch create task'), { what: 'the create span' });
    const task = (await api('GET', `/api/v1/tasks/${spanAttribute(span, 'dispatch.task.id')}`, { agent: 'nats-planner' })).body;
    expect(task.traceparent).toBe(trace.traceparent);
  });
});

describe('a traceparent Dispatch does not trace', () => {
  it('is kept but makes no span when the caller did not sample it, and a malformed one is ignored, not refused', async () => {
    const unsampled = newTrace('00');
    const kept = await api('POST', '/api/v1/tasks', { body: { title: 'not sampled', scope: SCOPE }, headers: { traceparent: unsampled.traceparent } });
    expect(kept.body.traceparent).toBe(unsampled.traceparent);
    const malformed = await api('POST', '/api/v1/tasks', { body: { title: 'bad header', scope: SCOPE }, headers: { traceparent: '00-xyz-1-01' } });
    expect(malformed.status).toBe(201);
    expect(malformed.body.traceparent).toBeNull();
    const zeros = await api('POST', '/api/v1/tasks', { body: { title: 'zero ids', scope: SCOPE }, headers: { traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` } });
    expect(zeros.body.traceparent).toBeNull();

    // A sampled task created after them: once its spans arrive, the unsampled one's would have too.
    const marker = newTrace();
    const after = await api('POST', '/api/v1/tasks', { body: { title: 'marker', scope: SCOPE }, headers: { traceparent: marker.traceparent } });
    await assigned(after.body.id);
    await assigned(kept.body.id);
    await waitFor(() => collector.spansOf(marker.traceId).some((s) => s.name === 'dispatch assign task') || undefined, { what: 'the marker’s assign span' });
    expect(collector.spansOf(unsampled.traceId)).toEqual([]);
  });
});
