import { connect, type NatsConnection } from 'nats';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { readStream, startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { createTask, expectError } from '../helpers/tasks.js';
import { unique } from '../helpers/task-api.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Delayed tasks (run_at, delay_ms) and expiry (start_by, schedule_to_start_timeout_ms), against
 * two Dispatch replicas on one database. The assignment tick is an hour and graphile-worker polls
 * every 500 ms, so a task assigned within a second of its time was woken by the due timer, not by
 * a tick. Lateness is measured on the database's own stamps and asserted loosely (a loaded 2-core
 * machine); the benchmark measures it properly.
 */

const HOUR = 3_600_000;
const config = {
  assignment: { tick_interval_ms: HOUR },
  lifecycle: { sweep_interval_ms: HOUR },
};

let nats: TestNatsServer;
let database: TestDatabase;
let replicas: TestDispatch[] = [];
let api: ApiClient;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  database = await createTestDatabase();
  replicas = [
    await startTestDispatch(database.url, { ...config, hermes: { url: nats.url } }),
    await startTestDispatch(database.url, { ...config, hermes: { url: '' } }),
  ];
  api = apiClient(replicas[0]!.baseUrl, 'planner');
  nc = await connect({ servers: nats.url });
  await waitFor(() => replicas[0]!.dispatch.events.status().streamReady, { what: 'stream provisioned' });
});

afterAll(async () => {
  await nc?.close();
  await Promise.all(replicas.map((r) => r.stop()));
  await database?.drop();
  await nats?.dispose();
});

async function registerAgent(name: string, scope: string, maxConcurrent = 5) {
  const response = await api('PUT', `/api/v1/agents/${name}`, { agent: name, body: { capabilities: [scope], status: 'ready', max_concurrent: maxConcurrent } });
  expect(response.status, JSON.stringify(response.body)).toBeLessThan(300);
}

interface Timing {
  id: string;
  status: string;
  run_at: Date | null;
  start_by: Date | null;
  assigned_at: Date | null;
  completed_at: Date | null;
  timeout_reason: string | null;
  error: string | null;
  first_assigned: Date | null;
  assigned_events: number;
  expired_events: number;
  /** Compared by the database, in microseconds: a Date keeps milliseconds, and a task assigned 0.3 ms before its start_by reads as assigned at it. */
  assigned_in_window: boolean | null;
  ended_at_or_after_start_by: boolean | null;
}

/** Each task's times as the database stamped them, with its assigned and expired events. */
async function timings(ids: string[]): Promise<Timing[]> {
  const { rows } = await sql<Timing>`
    SELECT t.id, t.status, t.run_at, t.start_by, t.assigned_at, t.completed_at, t.timeout_reason, t.error,
           (SELECT min(created_at) FROM dispatch_task_events e WHERE e.task_id = t.id AND e.event = 'assigned') AS first_assigned,
           (SELECT count(*)::int FROM dispatch_task_events e WHERE e.task_id = t.id AND e.event = 'assigned') AS assigned_events,
           (SELECT count(*)::int FROM dispatch_task_events e WHERE e.task_id = t.id AND e.event = 'expired') AS expired_events,
           t.assigned_at >= t.run_at AND t.assigned_at < t.start_by AS assigned_in_window,
           t.completed_at >= t.start_by AS ended_at_or_after_start_by
      FROM dispatch_tasks t WHERE t.id = ANY (${ids}::uuid[])`.execute(database.handle.db);
  return rows;
}

describe('creating a timed task', () => {
  it.each([
    [{ run_at: '2030-01-01T00:00:00Z', delay_ms: 10 }, 'run_at'],
    [{ start_by: '2999-01-01T00:00:00Z', schedule_to_start_timeout_ms: 10 }, 'start_by'],
    [{ run_at: 'tomorrow' }, 'run_at'],
    [{ run_at: '2030-01-01T00:00:00' }, 'run_at'],
    [{ run_at: new Date(Date.now() + 400 * 24 * HOUR).toISOString() }, 'run_at'],
    [{ delay_ms: -1 }, 'delay_ms'],
    [{ delay_ms: 400 * 24 * HOUR }, 'delay_ms'],
    [{ start_by: new Date(Date.now() - 1_000).toISOString() }, 'start_by'],
    [{ run_at: new Date(Date.now() + HOUR).toISOString(), start_by: new Date(Date.now() + 60_000).toISOString() }, 'start_by'],
    [{ delay_ms: HOUR, start_by: new Date(Date.now() + 60_000).toISOString() }, 'start_by'],
    [{ schedule_to_start_timeout_ms: 0 }, 'schedule_to_start_timeout_ms'],
  ])('refuses %j with 400 naming %s', async (timing, field) => {
    const response = await api('POST', '/api/v1/tasks', { body: { title: 'bad timing', scope: 'timing-bad', ...timing } });
    expectError(response, 400, 'validation_failed', field);
  });

  it('shows run_at and start_by in the task, and says in the placement what it waits for', async () => {
    const scope = unique('later');
    await registerAgent(unique('idle'), scope);
    const before = Date.now();
    const task = await createTask(api, { scope, delay_ms: HOUR, schedule_to_start_timeout_ms: 60_000, priority: 4 });
    expect(task.status).toBe('pending');
    expect(Date.parse(task.run_at)).toBeGreaterThanOrEqual(before + HOUR - 5_000);
    expect(task.not_before).toBe(task.run_at);
    expect(Date.parse(task.start_by)).toBe(Date.parse(task.run_at) + 60_000);
    expect(task.timeout_reason).toBeNull();
    const placement = await api('GET', `/api/v1/tasks/${task.id}/placement`, { admin: true });
    expect(placement.body.waiting_because[0]).toBe(`waiting until ${new Date(task.run_at).toISOString()} (run_at)`);
    expect(placement.body.waiting_because).toContain(`expires (ends timeout, reason expired) if not assigned by ${new Date(task.start_by).toISOString()}`);
    expect(placement.body).toMatchObject({ priority: 4, effective_priority: 4 });
    // A DBA sees it waiting for time, not for an agent.
    const { rows } = await sql<{ waiting_for: string; tasks: number }>`
      SELECT waiting_for, tasks::int FROM dispatch_queue_depth WHERE scope = ${scope}`.execute(database.handle.db);
    expect(rows).toEqual([{ waiting_for: 'time', tasks: 1 }]);
    const scheduled = await sql<{ id: string; reason: string }>`SELECT id, reason FROM dispatch_scheduled_tasks WHERE scope = ${scope}`.execute(database.handle.db);
    expect(scheduled.rows).toEqual([{ id: task.id, reason: 'run_at' }]);
    await api('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled' } });
  });
});

describe('a delayed task', () => {
  it('is assigned after its time and never before, woken by the lease holder’s due timer, whichever replica took it', async () => {
    const scope = unique('delayed');
    await registerAgent(unique('free'), scope, 50);
    // Created out of order, alternately through each replica: every new task is due before the
    // ones already armed, so each replica's timer must be pulled earlier by the NOTIFY.
    const delays = [2_400, 2_100, 1_800, 1_500, 1_200, 900, 600, 2_250, 1_650, 1_050];
    const ids: string[] = [];
    for (const [i, delay_ms] of delays.entries()) {
      const client = apiClient(replicas[i % 2]!.baseUrl, 'planner');
      ids.push((await createTask(client, { scope, delay_ms })).id);
    }
    const done = await waitFor(
      async () => {
        const rows = await timings(ids);
        return rows.every((r) => r.status === 'assigned') && rows;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'every delayed task assigned' },
    );
    for (const task of done) {
      expect(task.assigned_events).toBe(1);
      expect(task.assigned_at!.getTime()).toBeGreaterThanOrEqual(task.run_at!.getTime());
      expect(task.first_assigned!.getTime()).toBeGreaterThanOrEqual(task.run_at!.getTime());
      // Loose: the tick is an hour and graphile-worker polls every 500 ms.
      expect(task.assigned_at!.getTime() - task.run_at!.getTime()).toBeLessThan(1_000);
    }
  }, 60_000);

  it('keeps its time across a restart: a replica started after it fell due assigns it at once', async () => {
    const scope = unique('restart');
    await registerAgent(unique('patient'), scope);
    const alone = replicas.pop()!;
    await replicas.pop()!.stop();
    const task = await createTask(apiClient(alone.baseUrl, 'planner'), { scope, delay_ms: 800 });
    await alone.stop();
    await waitFor(() => Date.now() > Date.parse(task.run_at) + 200, { what: 'the task fell due with no replica running' });
    const started = Date.now();
    replicas = [
      await startTestDispatch(database.url, { ...config, hermes: { url: nats.url } }),
      await startTestDispatch(database.url, { ...config, hermes: { url: '' } }),
    ];
    api = apiClient(replicas[0]!.baseUrl, 'planner');
    const [row] = await waitFor(
      async () => {
        const rows = await timings([task.id]);
        return rows[0]?.status === 'assigned' && rows;
      },
      { timeoutMs: 15_000, what: 'the task assigned after the restart' },
    );
    expect(row!.assigned_at!.getTime()).toBeGreaterThanOrEqual(Date.parse(task.run_at));
    expect(Date.now() - started).toBeLessThan(15_000);
    await waitFor(() => replicas[0]!.dispatch.events.status().streamReady, { what: 'stream provisioned again' });
  }, 60_000);
});

describe('expiry', () => {
  it('ends a task not assigned by its start_by as timeout, reason expired, and publishes it', async () => {
    const scope = unique('nobody'); // no agent serves it: it can only expire
    const task = await createTask(api, { scope, schedule_to_start_timeout_ms: 700 });
    const startBy = Date.parse(task.start_by);
    const [row] = await waitFor(
      async () => {
        const rows = await timings([task.id]);
        return rows[0]?.status === 'timeout' && rows;
      },
      { timeoutMs: 10_000, what: 'the task expired' },
    );
    expect(row!.completed_at!.getTime()).toBeGreaterThanOrEqual(startBy);
    expect(row!.completed_at!.getTime() - startBy).toBeLessThan(1_000);
    const shown = await api('GET', `/api/v1/tasks/${task.id}`);
    expect(shown.body).toMatchObject({ status: 'timeout', timeout_reason: 'expired', error: `expired: not started by ${new Date(startBy).toISOString()}` });
    const message = await waitFor(
      async () => (await readStream(nc)).find((m) => m.subject === `swarm.task.${task.id}.timeout`),
      { timeoutMs: 10_000, what: 'the timeout message on NATS' },
    );
    expect(message.body).toMatchObject({ task_id: task.id, outcome: 'expired', reason: 'expired', retrying: false });
  });

  it('expires a delayed task at start_by when no agent took it after its run_at', async () => {
    const scope = unique('late-nobody');
    const runAt = new Date(Date.now() + 400).toISOString();
    const startBy = new Date(Date.now() + 1_000).toISOString();
    const task = await createTask(api, { scope, run_at: runAt, start_by: startBy });
    const [row] = await waitFor(
      async () => {
        const rows = await timings([task.id]);
        return rows[0]?.status === 'timeout' && rows;
      },
      { timeoutMs: 10_000, what: 'the delayed task expired' },
    );
    expect(row).toMatchObject({ timeout_reason: 'expired', assigned_events: 0, expired_events: 1 });
    expect(row!.completed_at!.getTime()).toBeGreaterThanOrEqual(Date.parse(startBy));
  });

  it('never expires a task once assigned', async () => {
    const scope = unique('taken');
    await registerAgent(unique('quick'), scope);
    const startBy = new Date(Date.now() + 1_000).toISOString();
    const task = await createTask(api, { scope, start_by: startBy });
    // A task nobody can take, expiring at the same instant, makes sure the timers fire then.
    const companion = await createTask(api, { scope: unique('nobody'), start_by: startBy });
    await waitFor(async () => (await timings([task.id]))[0]?.status === 'assigned', { what: 'assigned' });
    await waitFor(async () => (await timings([companion.id]))[0]?.status === 'timeout', { what: 'the companion expired' });
    expect((await timings([task.id]))[0]).toMatchObject({ status: 'assigned', expired_events: 0, timeout_reason: null });
  });

  it('under a race with assignment, each task is either assigned before its start_by or expired, never both', async () => {
    const scope = unique('race');
    for (let i = 0; i < 4; i++) await registerAgent(unique('racer'), scope, 60);
    // Each task falls due 1 to 400 ms before it expires (both instants stamped by the database at
    // the insert), so the assignment pass its run_at triggers (on either replica) meets the expiry
    // at its start_by: the short windows expire, the long ones are assigned, and in between the
    // two race for the row. The windows are spread evenly on a log scale (half under 20 ms), so
    // both outcomes occur whether this machine assigns in 2 ms or in 200. Created over time, the
    // 200 pairs of instants are spread out.
    const window = (i: number) => Math.round(400 ** (((i * 37) % 200) / 199));
    const bodies = Array.from({ length: 200 }, (_, i) => ({ title: `race ${i}`, scope, delay_ms: 1_000, schedule_to_start_timeout_ms: window(i) }));
    const ids: string[] = [];
    for (let i = 0; i < bodies.length; i += 10) {
      const batch = bodies.slice(i, i + 10).map(async (body, j) => (await createTask(apiClient(replicas[j % 2]!.baseUrl, 'planner'), body)).id);
      ids.push(...(await Promise.all(batch)));
    }
    const rows = await waitFor(
      async () => {
        const all = await timings(ids);
        return all.every((r) => r.status !== 'pending') && all;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'every racing task assigned or expired' },
    );
    let assigned = 0;
    let expired = 0;
    for (const row of rows) {
      if (row.status === 'assigned') {
        assigned += 1;
        expect(row).toMatchObject({ assigned_events: 1, expired_events: 0, timeout_reason: null, assigned_in_window: true });
      } else {
        expired += 1;
        expect(row).toMatchObject({ status: 'timeout', timeout_reason: 'expired', assigned_events: 0, expired_events: 1, ended_at_or_after_start_by: true });
      }
    }
    expect(assigned + expired).toBe(ids.length);
    expect(assigned, 'some tasks won the race').toBeGreaterThan(0);
    expect(expired, 'some tasks expired').toBeGreaterThan(0);
    // The agents' load counts exactly the tasks that were assigned.
    const { rows: load } = await sql<{ n: number }>`
      SELECT sum(active_tasks)::int AS n FROM dispatch_agent_load WHERE ${scope} = ANY (capabilities)`.execute(database.handle.db);
    expect(load[0]!.n).toBe(assigned);
    console.log(`expiry race: ${assigned} assigned before start_by, ${expired} expired`);
  }, 90_000);
});
