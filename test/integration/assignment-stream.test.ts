import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { createTestDatabase, databaseUrl, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { openEventStream, type OpenStream } from '../helpers/sse.js';
import { unique } from '../helpers/task-api.js';
import { assignDirectly, createTask } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * GET /api/v1/agents/:id/assignments on one replica: what an agent is sent (held tasks on
 * connect, assignments and cancels as they commit, each with its audit event id), who may read
 * it, resuming with Last-Event-ID, the long poll, and the stream as the agent's heartbeat.
 */

const HEARTBEAT_TIMEOUT_MS = 1_500;

let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;
const streams: OpenStream[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, {
    server: { stream_keepalive_ms: 200 },
    assignment: { agent_heartbeat_timeout_ms: HEARTBEAT_TIMEOUT_MS, tick_interval_ms: 200 },
    lifecycle: { sweep_interval_ms: 100 },
  });
  api = apiClient(dispatch.baseUrl, 'requester-1');
}, 60_000);

afterAll(async () => {
  for (const s of streams) s.close();
  await dispatch?.stop();
  await database?.drop();
});

const db = (): Db => database.handle.db;
const feedUrl = (agent: string, query = '') => `${dispatch.baseUrl}/api/v1/agents/${agent}/assignments${query}`;

async function open(agent: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  const stream = await openEventStream(feedUrl(agent), { 'x-agent-id': agent, ...headers });
  streams.push(stream);
  return stream;
}

async function register(agent: string, scope: string): Promise<void> {
  const response = await api('PUT', `/api/v1/agents/${agent}`, { agent, body: { capabilities: [scope] } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
}

/** The agent's stream events in the audit trail, in stream order (what the stream must send). */
async function auditTrail(agent: string): Promise<{ id: string; kind: string; task_id: string }[]> {
  const { rows } = await sql<{ id: string; kind: string; task_id: string }>`
    SELECT id::text, kind, task_id FROM dispatch_assignment_feed WHERE agent = ${agent} ORDER BY tx, id`.execute(db());
  return rows;
}

const parsed = (s: OpenStream) => s.events.map((e) => ({ id: e.id, kind: e.event, task: JSON.parse(e.data) }));

describe('the assignment stream', () => {
  it('sends the held tasks first, then each assignment as it commits, with the audit trail ids and the attempt', async () => {
    const agent = unique('streamer');
    const scope = unique('scope');
    const held = await createTask(api, { scope: 'not-served', title: 'held before' });
    await assignDirectly(db(), held.id, agent);
    const stream = await open(agent);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await stream.waitForEvents(1);
    await register(agent, scope);
    const created = await createTask(api, { scope, title: 'streamed' });
    await stream.waitForEvents(2);
    const events = parsed(stream);
    expect(events.map((e) => [e.kind, e.task.id])).toEqual([
      ['assigned', held.id],
      ['assigned', created.id],
    ]);
    expect(events[1]!.task).toMatchObject({ id: created.id, assignee: agent, attempt: 1, title: 'streamed' });
    const trail = await auditTrail(agent);
    expect(events.map((e) => e.id)).toEqual(trail.map((t) => t.id));
    // Keepalive comments arrive on an idle stream (every 200 ms here).
    await waitFor(() => stream.parser.comments >= 3, { what: 'keepalive comments' });
    expect(stream.events).toHaveLength(2);
  });

  it('sends a cancelled task as cancelled, and a timed out one as timeout', async () => {
    const agent = unique('canceller');
    const stream = await open(agent);
    const first = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), first.id, agent);
    await stream.waitForEvents(1);
    expect((await api('PATCH', `/api/v1/tasks/${first.id}`, { body: { status: 'cancelled' } })).status).toBe(200);
    await stream.waitForEvents(2);
    const second = await createTask(api, { scope: 'not-served', timeout_ms: 300 });
    await assignDirectly(db(), second.id, agent);
    await stream.waitForEvents(4);
    expect(parsed(stream).map((e) => [e.kind, e.task.id, e.task.attempt])).toEqual([
      ['assigned', first.id, 1],
      ['cancelled', first.id, 1],
      ['assigned', second.id, 1],
      ['timeout', second.id, 1],
    ]);
    expect(parsed(stream)[1]!.task.status).toBe('cancelled');
    expect(parsed(stream).map((e) => e.id)).toEqual((await auditTrail(agent)).map((t) => t.id));
  });

  it('does not tell an agent of a cancel after its attempt already timed out', async () => {
    const agent = unique('late');
    const stream = await open(agent);
    const task = await createTask(api, { scope: 'not-served', timeout_ms: 300, max_retries: 1 });
    await assignDirectly(db(), task.id, agent);
    await stream.waitForEvents(2);
    // Back to pending after the timeout (a retry is due later); now cancelled by its requester.
    expect((await api('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled' } })).status).toBe(200);
    const marker = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), marker.id, agent);
    await stream.waitForEvents(3);
    expect(parsed(stream).map((e) => [e.kind, e.task.id])).toEqual([
      ['assigned', task.id],
      ['timeout', task.id],
      ['assigned', marker.id],
    ]);
  });

  it('resumes after Last-Event-ID with exactly what was missed, and no held-task snapshot', async () => {
    const agent = unique('resumer');
    const first = await open(agent);
    const a = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), a.id, agent);
    const [seen] = await first.waitForEvents(1);
    first.close();
    const b = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), b.id, agent);
    expect((await api('PATCH', `/api/v1/tasks/${a.id}`, { body: { status: 'cancelled' } })).status).toBe(200);
    const resumed = await open(agent, { 'last-event-id': seen!.id });
    await resumed.waitForEvents(2);
    const c = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), c.id, agent);
    await resumed.waitForEvents(3);
    expect(parsed(resumed).map((e) => [e.kind, e.task.id])).toEqual([
      ['assigned', b.id],
      ['cancelled', a.id],
      ['assigned', c.id],
    ]);
    expect([seen!.id, ...parsed(resumed).map((e) => e.id)]).toEqual((await auditTrail(agent)).map((t) => t.id));
  });

  it('is not held back by a transaction left open in another database of the server', async () => {
    const agent = unique('neighbour');
    const elsewhere = new pg.Client({ connectionString: databaseUrl('postgres') });
    await elsewhere.connect();
    try {
      // Another application's transaction with an id, left open (a psql session's BEGIN; UPDATE ...).
      await elsewhere.query('BEGIN');
      await elsewhere.query('SELECT pg_current_xact_id()');
      // A later transaction has ended, so the open one is among those the next snapshots see running.
      const task = await createTask(api, { scope: 'not-served' });
      // Connecting afresh waits for the transactions its snapshot saw running that could write here.
      const stream = await open(agent);
      expect(stream.status).toBe(200);
      await assignDirectly(db(), task.id, agent);
      await stream.waitForEvents(1, 5_000);
      expect(parsed(stream).map((e) => [e.kind, e.task.id])).toEqual([['assigned', task.id]]);
      const poll = await api('GET', `/api/v1/agents/${agent}/assignments?wait=0&cursor=0`, { agent });
      expect(poll.body.events.map((e: any) => e.task.id)).toEqual([task.id]);
    } finally {
      await elsewhere.query('ROLLBACK');
      await elsewhere.end();
    }
  });

  it('is open to the agent itself and to an admin, to nobody else', async () => {
    const agent = unique('private');
    const other = await openEventStream(feedUrl(agent), { 'x-agent-id': unique('nosy') });
    expect(other.status).toBe(403);
    expect(JSON.parse(other.body!).error.code).toBe('forbidden');
    const longPoll = await api('GET', `/api/v1/agents/${agent}/assignments`, { agent: unique('nosy') });
    expect(longPoll.status).toBe(403);
    const admin = await open(agent, { 'x-agent-id': 'operator', authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(admin.status).toBe(200);
    const task = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), task.id, agent);
    await admin.waitForEvents(1);
  });

  it('names the bad field of a bad cursor, Last-Event-ID or wait', async () => {
    const agent = unique('picky');
    const bad = async (query: string, headers: Record<string, string> = {}) => {
      const response = await api('GET', `/api/v1/agents/${agent}/assignments${query}`, { agent, headers });
      expect(response.status).toBe(400);
      return response.body.error.details.map((d: { field: string }) => d.field);
    };
    expect(await bad('?wait=61')).toEqual(['query.wait']);
    expect(await bad('?wait=soon')).toEqual(['query.wait']);
    expect(await bad('?cursor=abc')).toEqual(['query.cursor']);
    expect(await bad('?since=1')).toEqual(['query.since']);
    expect(await bad('', { accept: 'text/event-stream', 'last-event-id': 'x1' })).toEqual(['Last-Event-ID']);
  });
});

describe('the long poll', () => {
  it('answers the held tasks at once, then waits for the next assignment and answers as soon as it commits', async () => {
    const agent = unique('poller');
    const held = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), held.id, agent);
    const first = await api('GET', `/api/v1/agents/${agent}/assignments?wait=30`, { agent });
    expect(first.status).toBe(200);
    expect(first.body.events.map((e: any) => [e.event, e.task.id])).toEqual([['assigned', held.id]]);
    expect(first.body.cursor).toBe(first.body.events[0].id);

    const started = Date.now();
    const waiting = api('GET', `/api/v1/agents/${agent}/assignments?wait=30&cursor=${first.body.cursor}`, { agent });
    const next = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), next.id, agent);
    const second = await waiting;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(second.body.events.map((e: any) => [e.event, e.task.id, e.task.attempt])).toEqual([['assigned', next.id, 1]]);
    expect(second.body.cursor).toBe(second.body.events[0].id);
    expect([first.body.cursor, second.body.cursor]).toEqual((await auditTrail(agent)).map((t) => t.id));
  });

  it('answers an empty list and the same cursor after wait seconds, and what is already there without waiting', async () => {
    const agent = unique('idle');
    const fresh = await api('GET', `/api/v1/agents/${agent}/assignments`, { agent });
    expect(fresh.body).toEqual({ events: [], cursor: '0' });
    const started = Date.now();
    const empty = await api('GET', `/api/v1/agents/${agent}/assignments?wait=1&cursor=0`, { agent });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(empty.body).toEqual({ events: [], cursor: '0' });

    const task = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), task.id, agent);
    const missed = await api('GET', `/api/v1/agents/${agent}/assignments?wait=0&cursor=0`, { agent });
    expect(missed.body.events.map((e: any) => e.task.id)).toEqual([task.id]);
  });

  it('answers work committed before it came even while an older transaction holds the audit trail back', async () => {
    const agent = unique('held-back');
    const task = await createTask(api, { scope: 'not-served' });
    const stray = await database.handle.pool.connect();
    try {
      // An older transaction with an id, still running: the assignment below commits behind it.
      await stray.query('BEGIN');
      await stray.query('SELECT pg_current_xact_id()');
      await assignDirectly(db(), task.id, agent);
      const poll = api('GET', `/api/v1/agents/${agent}/assignments?wait=0&cursor=0`, { agent });
      const early = await Promise.race([poll.then(() => 'answered'), new Promise((r) => setTimeout(r, 300, 'waiting'))]);
      expect(early).toBe('waiting');
      await stray.query('COMMIT');
      const answer = await poll;
      expect(answer.body.events.map((e: any) => e.task.id)).toEqual([task.id]);
    } finally {
      stray.release();
    }
  });

  it('gives a fresh cursor that misses nothing after it (tasks given and taken before it are not repeated)', async () => {
    const agent = unique('fresh');
    const gone = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), gone.id, agent);
    await api('PATCH', `/api/v1/tasks/${gone.id}`, { body: { status: 'cancelled' } });
    const fresh = await api('GET', `/api/v1/agents/${agent}/assignments`, { agent });
    expect(fresh.body.events).toEqual([]);
    const trail = await auditTrail(agent);
    expect(fresh.body.cursor).toBe(trail[trail.length - 1]!.id);
    const later = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), later.id, agent);
    const next = await api('GET', `/api/v1/agents/${agent}/assignments?wait=10&cursor=${fresh.body.cursor}`, { agent });
    expect(next.body.events.map((e: any) => e.task.id)).toEqual([later.id]);
  });
});

describe('an open stream as the heartbeat (standalone mode)', () => {
  const status = async (agent: string) =>
    (await db().selectFrom('dispatch_agents').select('status').where('name', '=', agent).executeTakeFirstOrThrow()).status;

  it('keeps the agent alive past its heartbeat timeout while open; once closed, the timeout runs', async () => {
    const agent = unique('alive');
    await register(agent, unique('scope'));
    const stream = await open(agent);
    await stream.waitForEvents(0);
    const opened = Date.now();
    // Three heartbeat timeouts without a registration call: still alive.
    await waitFor(() => Date.now() - opened > 3 * HEARTBEAT_TIMEOUT_MS, { timeoutMs: 10_000, intervalMs: 100, what: 'three timeouts' });
    expect(await status(agent)).toBe('ready');
    stream.close();
    const closed = Date.now();
    await waitFor(async () => (await status(agent)) === 'stopped', { timeoutMs: 15_000, what: 'the agent declared stopped' });
    // Not before the timeout counted from the close.
    expect(Date.now() - closed).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS - 200);
  });

  it('refreshes the agents whose rows are free while a batch holds another\'s, and comes back for that one', async () => {
    const base = unique('beat');
    const [heldAgent, freeAgent] = [`${base}-a`, `${base}-b`];
    for (const agent of [heldAgent, freeAgent]) await register(agent, unique('scope'));
    for (const agent of [heldAgent, freeAgent]) await (await open(agent)).waitForEvents(0);
    const lastSeen = async (agent: string) =>
      (await db().selectFrom('dispatch_agents').select('last_seen_at').where('name', '=', agent).executeTakeFirstOrThrow()).last_seen_at!.getTime();
    // The held agent's row locked as an assignment batch locks it, until it commits.
    const batch = new pg.Client({ connectionString: database.url });
    await batch.connect();
    let heldBefore: number;
    try {
      await batch.query('BEGIN');
      await batch.query('SELECT name FROM dispatch_agents WHERE name = $1 FOR UPDATE', [heldAgent]);
      // Read once the row is held: a refresh may commit until then.
      heldBefore = await lastSeen(heldAgent);
      const freeBefore = await lastSeen(freeAgent);
      // Its neighbour in name order is refreshed meanwhile: the refresh does not wait on the held row.
      await waitFor(async () => (await lastSeen(freeAgent)) > freeBefore, { timeoutMs: 5_000, what: 'the free agent refreshed while the other row is held' });
      // After a few tries the refresh waits for the held row (the SKIP LOCKED one never waits).
      await waitFor(
        async () =>
          (await sql<{ n: number }>`
            SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%UPDATE dispatch_agents a SET last_seen_at = now()%'`.execute(db())).rows[0]!.n === 1,
        { timeoutMs: 5_000, what: 'the refresh waiting for the held row' },
      );
      expect(await lastSeen(heldAgent)).toBe(heldBefore);
    } finally {
      await batch.query('COMMIT');
      await batch.end();
    }
    await waitFor(async () => (await lastSeen(heldAgent)) > heldBefore, { timeoutMs: 5_000, what: 'the held agent refreshed once its row was let go' });
    expect(await status(heldAgent)).toBe('ready');
  });
});

describe('the LISTEN connection', () => {
  it('is opened again when PostgreSQL drops it, and what committed meanwhile is sent', async () => {
    const agent = unique('reconnect');
    const stream = await open(agent);
    const first = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), first.id, agent);
    await stream.waitForEvents(1);
    const { rows } = await sql<{ n: number }>`
      SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE application_name = 'dispatch-listen' AND datname = current_database()`.execute(db());
    expect(rows[0]!.n).toBe(1);
    // Committed while nobody listens: no notification reaches this replica for it.
    const second = await createTask(api, { scope: 'not-served' });
    await assignDirectly(db(), second.id, agent);
    await stream.waitForEvents(2);
    expect(parsed(stream).map((e) => e.task.id)).toEqual([first.id, second.id]);
    await waitFor(
      async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'dispatch-listen' AND datname = current_database()`.execute(db())).rows[0]!.n === 1,
      { what: 'the LISTEN connection open again' },
    );
  });
});
