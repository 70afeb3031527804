import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { apiClient } from '../helpers/http.js';
import { errorLogLines, spawnReplicas, type ReplicaProcess } from '../helpers/replica-process.js';
import { openEventStream, type OpenStream, type SseEvent } from '../helpers/sse.js';
import { unique } from '../helpers/task-api.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The assignment stream across real replicas (separate processes on one database, no NATS): an
 * agent connected to replica A hears of work assigned through replica B; when A is SIGKILLed, the
 * agent resumes on B with Last-Event-ID and gets every assignment made meanwhile exactly once,
 * checked against the audit trail; a SIGTERMed replica ends its streams and exits.
 */

let database: TestDatabase;
let replicas: ReplicaProcess[] = [];
const streams: OpenStream[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  replicas = await spawnReplicas(2, {
    databaseUrl: database.url,
    name: 'stream',
    config: { server: { stream_keepalive_ms: 1_000 }, worker: { concurrency: 2 } },
  });
}, 120_000);

afterAll(async () => {
  for (const s of streams) s.close();
  await Promise.all(replicas.map((r) => r.stop(5_000)));
  await database?.drop();
});

const [a, b] = [() => replicas[0]!, () => replicas[1]!];

async function stream(replica: ReplicaProcess, agent: string, lastEventId?: string): Promise<OpenStream> {
  const headers: Record<string, string> = { 'x-agent-id': agent };
  if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
  const opened = await openEventStream(`${replica.apiUrl}/api/v1/agents/${agent}/assignments`, headers);
  expect(opened.status).toBe(200);
  streams.push(opened);
  return opened;
}

async function register(replica: ReplicaProcess, agent: string, scope: string): Promise<void> {
  const response = await apiClient(replica.apiUrl, agent)('PUT', `/api/v1/agents/${agent}`, { body: { capabilities: [scope], max_concurrent: 10_000 } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
}

async function create(replica: ReplicaProcess, scope: string, title: string): Promise<string> {
  const response = await apiClient(replica.apiUrl, 'requester-1')('POST', '/api/v1/tasks', { body: { title, scope } });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body.id;
}

/** The agent's stream events in the audit trail, in stream order. */
async function auditTrail(agent: string): Promise<{ id: string; kind: string; task_id: string }[]> {
  const { rows } = await sql<{ id: string; kind: string; task_id: string }>`
    SELECT id::text, kind, task_id FROM dispatch_assignment_feed WHERE agent = ${agent} ORDER BY tx, id`.execute(database.handle.db);
  return rows;
}

const summary = (events: SseEvent[]) => events.map((e) => ({ id: e.id, kind: e.event, task_id: JSON.parse(e.data).id as string }));

describe('the assignment stream across replicas', () => {
  it('tells an agent connected to A of work created and assigned through B, once', async () => {
    const agent = unique('agent');
    const scope = unique('scope');
    await register(b(), agent, scope);
    const onA = await stream(a(), agent);
    const first = await create(b(), scope, 'first');
    await onA.waitForEvents(1);
    // A later event proves nothing more was coming for the first task.
    const second = await create(b(), scope, 'second');
    await onA.waitForEvents(2);
    const cancel = await apiClient(b().apiUrl, 'requester-1')('PATCH', `/api/v1/tasks/${first}`, { body: { status: 'cancelled' } });
    expect(cancel.status).toBe(200);
    await onA.waitForEvents(3);
    expect(summary(onA.events).map((e) => [e.kind, e.task_id])).toEqual([
      ['assigned', first],
      ['assigned', second],
      ['cancelled', first],
    ]);
    expect(summary(onA.events)).toEqual(await auditTrail(agent));
  }, 60_000);

  it('resumes on B after A is SIGKILLed mid-stream: every assignment made meanwhile arrives once', async () => {
    const agent = unique('survivor');
    const scope = unique('scope');
    await register(b(), agent, scope);
    const onA = await stream(a(), agent);
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push(await create(b(), scope, `before ${i}`));
    await onA.waitForEvents(5);
    // Work keeps coming while A dies and the agent is away.
    let creating = true;
    const creator = (async () => {
      for (let i = 0; creating; i++) created.push(await create(b(), scope, `during ${i}`));
    })();
    await onA.waitForEvents(8);
    a().kill('SIGKILL');
    await a().exited;
    await onA.ended;
    const received = [...onA.events];
    await waitFor(() => created.length >= received.length + 10, { timeoutMs: 30_000, what: 'ten more tasks while the agent is away' });
    const onB = await stream(b(), agent, received[received.length - 1]!.id);
    for (let i = 0; i < 5; i++) created.push(await create(b(), scope, `after ${i}`));
    creating = false;
    await creator;
    await waitFor(async () => (await auditTrail(agent)).length === created.length && received.length + onB.events.length >= created.length, {
      timeoutMs: 30_000,
      what: `all ${created.length} assignments sent`,
    });
    const all = summary([...received, ...onB.events]);
    // Exactly the audit trail: nothing missed, nothing twice. (Compared by id: the fresh connect
    // sends the tasks already held first, so its first events need not be in the trail's order.)
    const byId = (events: typeof all) => [...events].sort((x, y) => Number(x.id) - Number(y.id));
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(byId(all)).toEqual(byId(await auditTrail(agent)));
    expect(new Set(all.map((e) => e.task_id))).toEqual(new Set(created));
    expect(all.every((e) => e.kind === 'assigned')).toBe(true);
  }, 120_000);

  it('ends its streams and exits on SIGTERM', async () => {
    const agent = unique('leaver');
    const onB = await stream(b(), agent);
    b().kill('SIGTERM');
    const exit = await b().exited;
    await onB.ended;
    expect(onB.hasEnded()).toBe(true);
    expect(exit, b().output()).toEqual({ code: 0, signal: null });
    expect(errorLogLines(b().output())).toEqual([]);
  }, 60_000);
});
