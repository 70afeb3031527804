import { beforeAll, describe, expect, it } from 'vitest';
import { TASK_REQUEST_ACK_WAIT_MS } from '../../src/events/stream.js';
import { taskEventMessage } from '../../src/events/subjects.js';
import { readStream, type StoredMessage } from '../helpers/nats-server.js';
import { useDispatchOnNats } from '../helpers/nats-dispatch.js';
import { waitFor } from '../helpers/wait.js';

const env = useDispatchOnNats((url) => ({
  hermes: { url, stats_interval_ms: 250 },
  lifecycle: { retry_backoff_base_ms: 0, retry_backoff_max_ms: 0 },
  worker: { poll_interval_ms: 50 },
}));
const NS_PER_MS = 1_000_000;

async function outboxEmpty(): Promise<boolean> {
  const { rows } = await env.database.handle.pool.query('SELECT count(*)::int AS n FROM dispatch_event_outbox');
  return rows[0].n === 0;
}

async function taskState(id: string) {
  return (await env.api('GET', `/api/v1/tasks/${id}`)).body;
}

async function waitForStatus(id: string, status: string, attempt?: number) {
  return await waitFor(
    async () => {
      const task = await taskState(id);
      return task.status === status && (attempt === undefined || task.attempt === attempt) ? task : undefined;
    },
    { what: `task ${id} ${status}${attempt ? ` (attempt ${attempt})` : ''}` },
  );
}

async function register(agent: string, capabilities: string[], status = 'ready') {
  const response = await env.api('PUT', `/api/v1/agents/${agent}`, { agent, body: { capabilities, status } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
}

async function create(body: Record<string, unknown>): Promise<string> {
  const response = await env.api('POST', '/api/v1/tasks', { body: { title: 'events test', ...body } });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body.id;
}

describe('JetStream stream provisioning', () => {
  it('creates DISPATCH_EVENTS with our subjects, a 30-day max age and a duplicate window for the outbox', async () => {
    const jsm = await env.nc.jetstreamManager();
    const { config } = await jsm.streams.info('DISPATCH_EVENTS');
    expect(config.subjects).toEqual(['swarm.task.>', 'swarm.dispatch.>']);
    expect(config.max_age).toBe(30 * 86_400_000 * NS_PER_MS);
    expect(config.duplicate_window).toBe(5 * 60_000 * NS_PER_MS);
    expect(config.retention).toBe('limits');
    expect(config.storage).toBe('file');
  });

  it('creates the shared durable consumer for swarm.task.request', async () => {
    const jsm = await env.nc.jetstreamManager();
    const { config } = await jsm.consumers.info('DISPATCH_EVENTS', 'dispatch-task-requests');
    expect(config.durable_name).toBe('dispatch-task-requests');
    expect(config.filter_subject).toBe('swarm.task.request');
    expect(config.ack_policy).toBe('explicit');
    expect(config.ack_wait).toBe(TASK_REQUEST_ACK_WAIT_MS * NS_PER_MS);
  });
});

describe('task events', () => {
  let stored: StoredMessage[];
  let rows: Awaited<ReturnType<typeof readEvents>>;
  const readEvents = () => env.database.handle.db.selectFrom('dispatch_task_events').selectAll().orderBy('id').execute();
  const tasks: Record<string, string> = {};

  beforeAll(async () => {
    await register('pub-coder', ['code']);
    await register('pub-failer', ['failing']);
    await register('pub-slow', ['slow']);
    await register('pub-doomed', ['doomed']);

    // created -> assigned -> progress -> completed
    tasks.done = await create({ scope: 'code' });
    await waitForStatus(tasks.done, 'assigned');
    expect((await env.api('POST', `/api/v1/tasks/${tasks.done}/progress`, { agent: 'pub-coder', body: { pct: 50, note: 'half' } })).status).toBe(200);
    expect((await env.api('POST', `/api/v1/tasks/${tasks.done}/complete`, { agent: 'pub-coder', body: { result: { lines: 42 } } })).status).toBe(200);

    // created -> unmatched -> context_updated -> cancelled
    tasks.cancelled = await create({ scope: 'nobody-has-this' });
    await waitFor(async () => (await env.api('GET', `/api/v1/tasks/${tasks.cancelled}/events`)).body.events.some((e: any) => e.event === 'unmatched'), {
      what: 'unmatched',
    });
    expect((await env.api('PATCH', `/api/v1/tasks/${tasks.cancelled}`, { body: { context: { more: true } } })).status).toBe(200);
    expect((await env.api('PATCH', `/api/v1/tasks/${tasks.cancelled}`, { body: { status: 'cancelled' } })).status).toBe(200);

    // assigned -> failed (retrying) -> assigned -> failed (final)
    tasks.failed = await create({ scope: 'failing', max_retries: 1 });
    await waitForStatus(tasks.failed, 'assigned', 1);
    expect((await env.api('POST', `/api/v1/tasks/${tasks.failed}/fail`, { agent: 'pub-failer', body: { error: 'flaky' } })).status).toBe(200);
    await waitForStatus(tasks.failed, 'assigned', 2);
    expect((await env.api('POST', `/api/v1/tasks/${tasks.failed}/fail`, { agent: 'pub-failer', body: { error: 'broken' } })).status).toBe(200);

    // assigned -> timeout (retry) -> assigned -> timeout (exhausted)
    tasks.timedOut = await create({ scope: 'slow', max_retries: 1, timeout_ms: 300 });
    await waitForStatus(tasks.timedOut, 'timeout');

    // assigned -> the agent stops -> reassigned
    tasks.reassigned = await create({ scope: 'doomed' });
    await waitForStatus(tasks.reassigned, 'assigned');
    await register('pub-doomed', ['doomed'], 'stopped');
    await waitForStatus(tasks.reassigned, 'pending');

    // The broker may still record events (the returned task is found unmatched): take a snapshot
    // in which the env.database and the stream agree, i.e. nothing was recorded while we read.
    await waitFor(
      async () => {
        const before = await readEvents();
        if (!(await outboxEmpty())) return false;
        stored = (await readStream(env.nc)).filter((m) => m.subject.startsWith('swarm.task.') && m.subject !== 'swarm.task.request');
        rows = await readEvents();
        return rows.length === before.length;
      },
      { what: 'outbox drained and quiet', intervalMs: 50 },
    );
  });

  it('publishes every recorded event once, with its event id as the message id, in order per task', async () => {
    expect(rows.length).toBeGreaterThan(20);
    const byId = new Map<string, StoredMessage[]>();
    for (const message of stored) byId.set(message.msgId!, [...(byId.get(message.msgId!) ?? []), message]);
    expect(stored.length).toBe(rows.length);
    const lastSeqByTask = new Map<string, number>();
    for (const row of rows) {
      const copies = byId.get(row.event_id) ?? [];
      expect(copies, `event ${row.event} ${row.event_id}`).toHaveLength(1);
      const expected = taskEventMessage(row);
      expect(copies[0]!.subject).toBe(expected.subject);
      expect(copies[0]!.body).toEqual(JSON.parse(JSON.stringify(expected.body)));
      expect(copies[0]!.seq, `order of ${row.task_id}`).toBeGreaterThan(lastSeqByTask.get(row.task_id) ?? 0);
      lastSeqByTask.set(row.task_id, copies[0]!.seq);
    }
  });

  const subjectsOf = (task: string) => stored.filter((m) => m.body.task_id === task).map((m) => m.subject.split('.').at(-1));
  const bodiesOf = (task: string, name: string) => stored.filter((m) => m.body.task_id === task && m.subject.endsWith(`.${name}`)).map((m) => m.body);
  const envelope = { event_id: expect.any(String), occurred_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) };

  it('created, assigned, progress, completed', () => {
    const id = tasks.done!;
    expect(subjectsOf(id)).toEqual(['created', 'assigned', 'progress', 'completed']);
    expect(bodiesOf(id, 'created')[0]).toEqual({ task_id: id, requester: 'agent-test', scope: 'code', priority: 3, ...envelope });
    expect(bodiesOf(id, 'assigned')[0]).toEqual({ task_id: id, assignee: 'pub-coder', scope: 'code', attempt: 1, ...envelope });
    expect(bodiesOf(id, 'progress')[0]).toEqual({ task_id: id, pct: 50, note: 'half', ...envelope });
    expect(bodiesOf(id, 'completed')[0]).toEqual({ task_id: id, result: { lines: 42 }, ...envelope });
  });

  it('unmatched, context_updated, cancelled', () => {
    const id = tasks.cancelled!;
    expect(subjectsOf(id)).toEqual(['created', 'unmatched', 'context_updated', 'cancelled']);
    expect(bodiesOf(id, 'unmatched')[0]).toEqual({ task_id: id, scope: 'nobody-has-this', ...envelope });
    expect(bodiesOf(id, 'cancelled')[0]).toEqual({ task_id: id, cancelled_by: 'agent-test', assignee: null, ...envelope });
  });

  it('failed, with retrying true while retries remain', () => {
    const id = tasks.failed!;
    expect(subjectsOf(id)).toEqual(['created', 'assigned', 'failed', 'assigned', 'failed']);
    const [retry, final] = bodiesOf(id, 'failed');
    expect(retry).toEqual({ task_id: id, error: 'flaky', retry_count: 1, max_retries: 1, retryable: true, retrying: true, ...envelope });
    expect(final).toEqual({ task_id: id, error: 'broken', retry_count: 1, max_retries: 1, retryable: true, retrying: false, ...envelope });
  });

  it('timeout, with the outcome', () => {
    const id = tasks.timedOut!;
    expect(subjectsOf(id)).toEqual(['created', 'assigned', 'timeout', 'assigned', 'timeout']);
    const [retry, exhausted] = bodiesOf(id, 'timeout');
    expect(retry).toMatchObject({ task_id: id, retry_count: 1, max_retries: 1, outcome: 'retry', retrying: true, ...envelope });
    expect(exhausted).toMatchObject({ task_id: id, retry_count: 1, max_retries: 1, outcome: 'exhausted', retrying: false, ...envelope });
  });

  it('reassigned when the agent stops', () => {
    const id = tasks.reassigned!;
    expect(subjectsOf(id).slice(0, 3)).toEqual(['created', 'assigned', 'reassigned']);
    expect(bodiesOf(id, 'reassigned')[0]).toEqual({ task_id: id, from: 'pub-doomed', reason: 'agent stopped', reassign_count: 1, ...envelope });
  });

  it('reports the backlog as a metric', async () => {
    const metrics = await (await fetch(`${env.dispatch.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/^dispatch_events_outbox_backlog \d+$/m);
    expect(metrics).toMatch(/^dispatch_events_outbox_lag_seconds [\d.e-]+$/m);
    expect(metrics).toMatch(/^dispatch_events_published_total\{event="completed"\} 1$/m);
    expect(metrics).toMatch(/^dispatch_events_nats_connected 1$/m);
  });
});

describe('swarm.dispatch.stats', () => {
  it('is published every interval with the queue statistics', async () => {
    const messages = await waitFor(
      async () => {
        const found = (await readStream(env.nc)).filter((m) => m.subject === 'swarm.dispatch.stats');
        return found.length >= 2 ? found : undefined;
      },
      { what: 'two stats messages' },
    );
    const body = messages.at(-1)!.body;
    expect(body).toMatchObject({
      pending: expect.any(Number),
      running: expect.any(Number),
      completed: expect.any(Number),
      failed: expect.any(Number),
      timestamp: expect.any(String),
      event_id: expect.any(String),
      occurred_at: body.timestamp,
    });
    expect('avg_completion_ms' in body).toBe(true);
    expect(new Set(messages.map((m) => m.msgId)).size).toBe(messages.length);
  });
});
