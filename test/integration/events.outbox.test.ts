import { Writable } from 'node:stream';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDispatch, type Dispatch } from '../../src/app.js';
import { taskEventMessage } from '../../src/events/subjects.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, testConfig, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient } from '../helpers/http.js';
import { readStream, startNatsServer, type StoredMessage, type TestNatsServer } from '../helpers/nats-server.js';
import { spawnReplica } from '../helpers/replica-process.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The outbox's promises: nothing lost and nothing duplicated whatever happens to NATS or to the
 * replica, each task's events in order. Each test gets its own database and NATS server.
 */

let nats: TestNatsServer;
let database: TestDatabase;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
});
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
  await database?.drop();
  // A fresh stream for the next test: delete it while the server is up.
  if (!nats.running()) await nats.start();
  const nc = await connect({ servers: nats.url });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.delete('DISPATCH_EVENTS').catch(() => undefined);
  await nc.close();
});
afterAll(async () => {
  await nats?.dispose();
});

async function natsClient(): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  cleanup.push(() => nc.close());
  return nc;
}

async function startReplica(url = nats.url): Promise<TestDispatch> {
  const replica = await startTestDispatch(database.url, { hermes: { url, stats_interval_ms: 60_000 } });
  cleanup.push(() => replica.stop());
  return replica;
}

async function owedCount(): Promise<number> {
  const { rows } = await database.handle.pool.query('SELECT count(*)::int AS n FROM dispatch_event_outbox');
  return rows[0].n;
}

/** Every event in the database is in the stream exactly once, with its body, in order per task. */
async function expectStreamMatchesDatabase(nc: NatsConnection): Promise<number> {
  const rows = await database.handle.db.selectFrom('dispatch_task_events').selectAll().orderBy('id').execute();
  const stored = (await readStream(nc)).filter((m) => m.subject.startsWith('swarm.task.'));
  const byEventId = new Map<string, StoredMessage[]>();
  for (const m of stored) byEventId.set(m.msgId!, [...(byEventId.get(m.msgId!) ?? []), m]);
  const missing = rows.filter((r) => !byEventId.has(r.event_id));
  const duplicated = [...byEventId.values()].filter((copies) => copies.length > 1);
  expect(missing.map((r) => `${r.id}:${r.event}`), 'events never published').toEqual([]);
  expect(duplicated.length, 'events published twice').toBe(0);
  expect(stored.length).toBe(rows.length);
  const lastSeq = new Map<string, number>();
  for (const row of rows) {
    const message = byEventId.get(row.event_id)![0]!;
    expect(message.subject).toBe(taskEventMessage(row).subject);
    expect(message.body.event_id).toBe(row.event_id);
    expect(message.seq, `order of task ${row.task_id}`).toBeGreaterThan(lastSeq.get(row.task_id) ?? 0);
    lastSeq.set(row.task_id, message.seq);
  }
  return rows.length;
}

describe('outbox', () => {
  it('keeps events while NATS is down mid-run and delivers all of them, once, in order, when it returns', async () => {
    database = await createTestDatabase();
    const replica = await startReplica();
    const api = apiClient(replica.baseUrl);
    await api('PUT', '/api/v1/agents/outbox-worker', { agent: 'outbox-worker', body: { capabilities: ['work'], max_concurrent: 100_000 } });
    const nc = await natsClient();
    await waitFor(() => replica.dispatch.events.status().streamReady, { what: 'stream ready' });

    // A steady stream of work (create, then progress once assigned) that never pauses.
    let writing = true;
    let created = 0;
    const writer = (async () => {
      while (writing) {
        const response = await api('POST', '/api/v1/tasks', { body: { title: `job ${created}`, scope: 'work' } });
        expect(response.status).toBe(201);
        created += 1;
        if (created % 3 === 0) {
          const assigned = await waitFor(async () => {
            const task = (await api('GET', `/api/v1/tasks/${response.body.id}`)).body;
            return task.status === 'assigned' ? task : undefined;
          }, { what: 'assignment', timeoutMs: 20_000 });
          const progress = await api('POST', `/api/v1/tasks/${assigned.id}/progress`, { agent: 'outbox-worker', body: { step: created } });
          expect(progress.status).toBe(200);
        }
      }
    })();

    await waitFor(() => created >= 15, { what: 'first tasks', timeoutMs: 20_000 });
    await nats.stop();
    await waitFor(() => !replica.dispatch.events.status().connected, { what: 'disconnect noticed' });
    const createdBeforeOutage = created;
    // The API keeps working; events pile up in the outbox.
    await waitFor(() => created >= createdBeforeOutage + 30, { what: 'tasks during the outage', timeoutMs: 30_000 });
    await waitFor(async () => (await owedCount()) > 30, { what: 'backlog' });
    const metrics = await waitFor(
      async () => {
        const text = await (await fetch(`${replica.opsUrl}/metrics`)).text();
        const backlog = Number(/^dispatch_events_outbox_backlog (\S+)$/m.exec(text)?.[1] ?? 0);
        return backlog > 0 ? text : undefined;
      },
      { what: 'backlog metric', timeoutMs: 8_000, intervalMs: 200 },
    );
    expect(metrics).toMatch(/^dispatch_events_nats_connected 0$/m);

    await nats.start();
    await waitFor(() => created >= createdBeforeOutage + 45, { what: 'tasks after the outage', timeoutMs: 30_000 });
    writing = false;
    await writer;
    await waitFor(async () => (await owedCount()) === 0, { what: 'outbox drained after reconnect', timeoutMs: 30_000 });
    const events = await expectStreamMatchesDatabase(nc);
    expect(events).toBeGreaterThan(2 * created);
  }, 120_000);

  it('loses nothing when a replica dies between commit and publish, and duplicates nothing when it died after publishing', async () => {
    database = await createTestDatabase();
    const nc = await natsClient();
    // A replica whose NATS never answers commits events but cannot publish them (it "dies" here).
    const deaf = await startTestDispatch(database.url, { hermes: { url: 'nats://127.0.0.1:1' } });
    const api = apiClient(deaf.baseUrl);
    await api('PUT', '/api/v1/agents/orphan-worker', { agent: 'orphan-worker', body: { capabilities: ['orphans'], max_concurrent: 1_000 } });
    for (let i = 0; i < 20; i += 1) {
      expect((await api('POST', '/api/v1/tasks', { body: { title: `orphan ${i}`, scope: 'orphans' } })).status).toBe(201);
    }
    await waitFor(async () => (await api('GET', '/api/v1/tasks?status=assigned&limit=100')).body.tasks.length === 20, { what: 'all assigned' });
    await deaf.stop();
    const recorded = await database.handle.db.selectFrom('dispatch_task_events').select('id').execute();
    expect(recorded.length).toBeGreaterThanOrEqual(20);
    expect(await owedCount()).toBe(recorded.length);

    // Another replica had published the first 8 before dying, without recording it.
    const jsm = await nc.jetstreamManager();
    const { ensureEventStream } = await import('../../src/events/stream.js');
    await ensureEventStream(jsm, createLogger({ level: 'silent' }));
    const owed = await database.handle.db.selectFrom('dispatch_task_events').selectAll().orderBy('id').limit(8).execute();
    const js = nc.jetstream();
    for (const row of owed) {
      const message = taskEventMessage(row);
      await js.publish(message.subject, JSON.stringify(message.body), { msgID: message.msgId });
    }

    const survivor = await startReplica();
    await waitFor(async () => (await owedCount()) === 0, { what: 'outbox drained by the survivor', timeoutMs: 10_000 });
    expect(await expectStreamMatchesDatabase(nc)).toBe(recorded.length);
    const text = await (await fetch(`${survivor.opsUrl}/metrics`)).text();
    // It published all 20 creations; the stream kept the 8 it already had once (see above).
    expect(text).toMatch(/^dispatch_events_published_total\{event="created"\} 20$/m);
  });

  it('loses and duplicates nothing when a replica process is SIGKILLed while publishing', async () => {
    database = await createTestDatabase();
    const nc = await natsClient();
    const victim = await spawnReplica({ databaseUrl: database.url, config: { hermes: { url: nats.url } }, name: 'outbox-victim' });
    cleanup.push(() => victim.stop(1_000));
    const api = apiClient(victim.apiUrl);
    await api('PUT', '/api/v1/agents/kill-worker', { agent: 'kill-worker', body: { capabilities: ['kill'], max_concurrent: 100_000 } });
    // Concurrent writers keep the publisher busy, so the kill lands mid-batch more often than not.
    let written = 0;
    const writers = Array.from({ length: 4 }, async () => {
      for (;;) {
        try {
          const response = await api('POST', '/api/v1/tasks', { body: { title: 'before the crash', scope: 'kill' } });
          if (response.status === 201) written += 1;
        } catch {
          return; // the replica is gone
        }
      }
    });
    await waitFor(async () => written >= 100 && (await readStream(nc)).length > 20, { what: 'publishing under way', intervalMs: 20, timeoutMs: 60_000 });
    victim.kill('SIGKILL');
    await victim.exited;
    await Promise.all(writers);

    await startReplica();
    await waitFor(async () => (await owedCount()) === 0, { what: 'outbox drained by the survivor', timeoutMs: 60_000 });
    expect(await expectStreamMatchesDatabase(nc)).toBeGreaterThanOrEqual(written);
  }, 120_000);

  it('starts without NATS, warns once, and connects and publishes when NATS comes up', async () => {
    database = await createTestDatabase();
    await nats.stop();
    const lines: { level: string; msg: string }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const config = testConfig({ hermes: { url: nats.url } });
    const logger = createLogger({ level: 'debug' }, sink);
    const dispatch: Dispatch = await startDispatch(config, database.url, logger);
    cleanup.push(() => dispatch.stop());
    const api = apiClient(`http://127.0.0.1:${dispatch.apiPort}`);
    expect((await api('POST', '/api/v1/tasks', { body: { title: 'while NATS is down', scope: 'nobody' } })).status).toBe(201);
    // Several retries happen (backoff from 500 ms) ...
    await waitFor(() => lines.filter((l) => l.msg === 'NATS still unreachable').length >= 2, { what: 'retries', timeoutMs: 10_000 });
    // ... with one warning between them.
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings.map((l) => l.msg)).toEqual([
      'NATS unreachable: Dispatch runs without it (events wait in the outbox) and keeps trying to connect in the background',
    ]);

    await nats.start();
    await waitFor(() => dispatch.events.status().streamReady, { what: 'connected after NATS started', timeoutMs: 10_000 });
    await waitFor(async () => (await owedCount()) === 0, { what: 'event published' });
    const nc = await natsClient();
    expect(await expectStreamMatchesDatabase(nc)).toBeGreaterThanOrEqual(1);
    expect(lines.some((l) => l.level === 'info' && l.msg === 'NATS reachable: connected, events flowing')).toBe(true);
  });

  it('adopts an operator’s stream: adds what Dispatch needs, keeps the rest, and does not replay old requests', async () => {
    database = await createTestDatabase();
    const nc = await natsClient();
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({
      name: 'DISPATCH_EVENTS',
      description: 'operator managed',
      subjects: ['swarm.task.>', 'ops.audit.>'],
      max_age: 7 * 86_400_000 * 1_000_000,
      max_msgs: 100_000,
      duplicate_window: 3 * 60_000 * 1_000_000,
    });
    // A request an earlier broker already handled, still in the stream.
    await nc.jetstream().publish('swarm.task.request', JSON.stringify({ requester: 'old-timer', title: 'handled long ago', scope: 'x' }));

    const replica = await startReplica();
    await waitFor(() => replica.dispatch.events.status().consumingRequests, { what: 'consumer attached' });
    const { config } = await jsm.streams.info('DISPATCH_EVENTS');
    expect(config.subjects).toEqual(['swarm.task.>', 'ops.audit.>', 'swarm.dispatch.>']);
    expect(config).toMatchObject({
      description: 'operator managed',
      max_age: 7 * 86_400_000 * 1_000_000,
      max_msgs: 100_000,
      duplicate_window: 3 * 60_000 * 1_000_000,
    });

    await nc.jetstream().publish('swarm.task.request', JSON.stringify({ requester: 'old-timer', title: 'new one', scope: 'x' }));
    const tasks = await waitFor(async () => {
      const rows = await database.handle.db.selectFrom('dispatch_tasks').select('title').where('requester', '=', 'old-timer').execute();
      return rows.length > 0 ? rows : undefined;
    });
    expect(tasks.map((t) => t.title)).toEqual(['new one']);
  });

  it('recreates the stream and the request consumer when they are deleted under it', async () => {
    database = await createTestDatabase();
    const nc = await natsClient();
    const replica = await startReplica();
    await waitFor(() => replica.dispatch.events.status().consumingRequests, { what: 'consumer attached' });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete('DISPATCH_EVENTS');

    const api = apiClient(replica.baseUrl);
    expect((await api('POST', '/api/v1/tasks', { body: { title: 'after the deletion', scope: 'x' } })).status).toBe(201);
    await waitFor(async () => (await owedCount()) === 0, { what: 'published to the recreated stream', timeoutMs: 15_000 });
    await expectStreamMatchesDatabase(nc);

    await waitFor(async () => (await jsm.consumers.info('DISPATCH_EVENTS', 'dispatch-task-requests').catch(() => null)) !== null, {
      what: 'consumer recreated',
      timeoutMs: 15_000,
    });
    await nc.jetstream().publish('swarm.task.request', JSON.stringify({ requester: 'survivor', title: 'still heard', scope: 'x' }));
    await waitFor(
      async () => (await database.handle.db.selectFrom('dispatch_tasks').select('id').where('requester', '=', 'survivor').execute()).length === 1,
      { what: 'request consumed after recreation', timeoutMs: 15_000 },
    );
  });

  it('shuts down promptly while NATS is down', async () => {
    database = await createTestDatabase();
    const replica = await startTestDispatch(database.url, { hermes: { url: nats.url } });
    await waitFor(() => replica.dispatch.events.status().agentEvents && replica.dispatch.events.status().consumingRequests, {
      what: 'fully connected',
    });
    await nats.stop();
    await waitFor(() => !replica.dispatch.events.status().connected, { what: 'disconnect noticed' });
    const started = Date.now();
    await replica.stop();
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('with hermes.url empty, says so once and runs without NATS', async () => {
    database = await createTestDatabase();
    const lines: { level: string; msg: string }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const dispatch = await startDispatch(testConfig({ hermes: { url: '' } }), database.url, createLogger({ level: 'info' }, sink));
    cleanup.push(() => dispatch.stop());
    expect(dispatch.events.status()).toMatchObject({ enabled: false, connected: false });
    await waitFor(() => lines.some((l) => l.msg === 'dispatch listening'));
    expect(lines.filter((l) => /NATS/.test(l.msg)).map((l) => [l.level, l.msg])).toEqual([['info', 'hermes.url is empty: NATS events are disabled']]);
  });
});
