import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK, NOTIFY_CHANNEL } from '../../src/db/contract.js';
import { NotificationListener } from '../../src/db/listener.js';
import { DueTimer } from '../../src/lifecycle/due-timer.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { insertTask } from '../../src/tasks/task.queries.js';
import { useTestDatabase } from '../helpers/database.js';
import { newTaskRow } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The due timer wakes at due instants on one replica only: the one whose LISTEN session holds the
 * lease (ADVISORY_LOCK.dueTimer). Each "replica" here is what src/app.ts wires: a listener and a
 * due timer leasing on it, on a database no Dispatch runs on, so only these timers expire tasks.
 */

const database = useTestDatabase();
const logger = createLogger({ level: 'silent' });
const started: { stop(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()));
});

function startReplica(safetyIntervalMs: number) {
  const listener = new NotificationListener(
    {
      newClient: () => new pg.Client({ connectionString: database().url }),
      channels: { [NOTIFY_CHANNEL.due]: (payload) => timer.notify(Number(payload)) },
      onListening: () => timer.resync(),
    },
    logger,
  );
  const lease = { holds: () => listener.holds(ADVISORY_LOCK.dueTimer), tryTake: () => listener.tryHold(ADVISORY_LOCK.dueTimer) };
  const timer = new DueTimer(database().handle.db, lease, { safetyIntervalMs, retry: { backoffBaseMs: 10, backoffMaxMs: 10 } }, logger, createMetrics());
  listener.start();
  timer.start();
  const replica = {
    leads: lease.holds,
    async stop() {
      await timer.stop();
      await listener.stop();
    },
  };
  started.push(replica);
  return replica;
}

/** A pending task that expires `inMs` from now (start_by). */
async function expiringTask(inMs: number): Promise<{ id: string; startBy: Date }> {
  const task = (await insertTask(database().handle.db, newTaskRow('nobody-serves-this', { schedule_to_start_timeout_ms: inMs })))!;
  return { id: task.id, startBy: task.start_by! };
}

async function statusOf(id: string): Promise<string> {
  const { rows } = await sql<{ status: string }>`SELECT status FROM dispatch_tasks WHERE id = ${id}`.execute(database().handle.db);
  return rows[0]!.status;
}

async function leaseHolders(): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
     WHERE l.locktype = 'advisory' AND l.objid = ${ADVISORY_LOCK.dueTimer} AND l.granted AND d.datname = current_database()`.execute(database().handle.db);
  return rows[0]!.n;
}

/** Until the database's clock is `ms` past `instant`. */
async function databaseClockPast(instant: Date, ms: number): Promise<void> {
  await waitFor(
    async () => (await sql<{ past: boolean }>`SELECT now() > ${instant}::timestamptz + ${`${ms} milliseconds`}::interval AS past`.execute(database().handle.db)).rows[0]!.past,
    { what: `the clock ${ms} ms past ${instant.toISOString()}` },
  );
}

describe('the due timer lease', () => {
  it('is held by one replica at a time; when its holder goes, another takes it at its next safety pass', async () => {
    const replicas = [startReplica(300), startReplica(300), startReplica(300)];
    await waitFor(async () => replicas.filter((r) => r.leads()).length === 1 && (await leaseHolders()) === 1, { what: 'one leader' });
    const leader = replicas.find((r) => r.leads())!;
    const task = await expiringTask(200);
    await waitFor(async () => (await statusOf(task.id)) === 'timeout', { what: 'the task expired' });

    await leader.stop();
    const others = replicas.filter((r) => r !== leader);
    await waitFor(async () => others.filter((r) => r.leads()).length === 1 && (await leaseHolders()) === 1, {
      timeoutMs: 5_000,
      what: 'another leader',
    });
  });

  it('wakes only the holder at a due instant: without the lease a replica waits for its safety pass', async () => {
    // Somebody else holds the lease: this replica's timer only makes safety passes (a minute apart here).
    const holder = new pg.Client({ connectionString: database().url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK.dueTimer]);
      const follower = startReplica(60_000);
      const task = await expiringTask(200);
      await databaseClockPast(task.startBy, 500);
      expect(await statusOf(task.id)).toBe('pending');
      expect(follower.leads()).toBe(false);
    } finally {
      await holder.end();
    }

    // The lease is free now: a replica starting takes it, expires what is overdue, and then wakes
    // at the next instant itself (its safety pass is a minute away).
    const leader = startReplica(60_000);
    await waitFor(async () => leader.leads(), { what: 'the new replica leading' });
    const next = await expiringTask(300);
    await databaseClockPast(next.startBy, 0);
    await waitFor(async () => (await statusOf(next.id)) === 'timeout', { timeoutMs: 3_000, what: 'the next task expired at its instant' });
  });
});
