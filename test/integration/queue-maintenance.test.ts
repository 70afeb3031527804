import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK } from '../../src/db/contract.js';
import { QueueMaintenance } from '../../src/assignment/queue-maintenance.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertTasks } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

const deadTuples = async () =>
  (
    await sql<{ n: number }>`SELECT n_dead_tup::int AS n FROM pg_stat_user_tables WHERE relname = 'dispatch_tasks'`.execute(database.handle.db)
  ).rows[0]!.n;

describe('queue maintenance', () => {
  it('vacuums a hot table past the dead-tuple threshold, one replica at a time', async () => {
    const db = database.handle.db;
    const maintenance = new QueueMaintenance(database.handle.pool, { intervalMs: 0, deadTuples: 500 }, createLogger({ level: 'silent' }));
    expect(await maintenance.runOnce()).toEqual([]);

    // Every cancellation rewrites a row: the old versions are dead until a vacuum.
    await insertTasks(db, 2_000, { scope: 'churn' });
    await sql`UPDATE dispatch_tasks SET status = 'cancelled', completed_at = now() WHERE scope = 'churn'`.execute(db);
    await waitFor(async () => (await deadTuples()) >= 2_000, { what: 'dead tuples counted', timeoutMs: 15_000, intervalMs: 100 });

    // Another replica at it: this one leaves it alone.
    const other = await database.handle.pool.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK.queueMaintenance]);
      expect(await maintenance.runOnce()).toEqual([]);
      await other.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK.queueMaintenance]);
    } finally {
      other.release();
    }

    expect(await maintenance.runOnce()).toContain('public.dispatch_tasks');
    expect(await deadTuples()).toBeLessThan(500);
  });

  it('leaves a table it vacuumed alone for rest_factor times that vacuum\'s duration', async () => {
    const db = database.handle.db;
    // The maintenance's clock: every reading moves it 100 ms on, so a vacuum (read before and after) takes 100 ms on it.
    let clock = 0;
    const now = () => (clock += 100);
    const maintenance = new QueueMaintenance(database.handle.pool, { intervalMs: 0, deadTuples: 500, restFactor: 30 }, createLogger({ level: 'silent' }), now);
    const churn = async (scope: string) => {
      await insertTasks(db, 2_000, { scope });
      await sql`UPDATE dispatch_tasks SET status = 'cancelled', completed_at = now() WHERE scope = ${scope}`.execute(db);
      await waitFor(async () => (await deadTuples()) >= 2_000, { what: 'dead tuples counted', timeoutMs: 15_000, intervalMs: 100 });
    };

    await churn('churn-rest-1');
    expect(await maintenance.runOnce()).toContain('public.dispatch_tasks');
    const vacuumedAt = clock;
    // The vacuum took 100 ms: dispatch_tasks rests 3 s, past the threshold or not.
    await churn('churn-rest-2');
    expect(await maintenance.runOnce()).not.toContain('public.dispatch_tasks');
    expect(await deadTuples()).toBeGreaterThanOrEqual(2_000);
    clock = vacuumedAt + 3_000;
    expect(await maintenance.runOnce()).toContain('public.dispatch_tasks');
    expect(await deadTuples()).toBeLessThan(500);
  });

  it('looks only on the replica that leads, so the swarm vacuums once per interval however many replicas it has', async () => {
    const db = database.handle.db;
    let leads = false;
    const options = { intervalMs: 0, deadTuples: 500, leads: () => leads };
    const maintenance = new QueueMaintenance(database.handle.pool, options, createLogger({ level: 'silent' }));
    await insertTasks(db, 2_000, { scope: 'churn-led' });
    await sql`UPDATE dispatch_tasks SET status = 'cancelled', completed_at = now() WHERE scope = 'churn-led'`.execute(db);
    await waitFor(async () => (await deadTuples()) >= 2_000, { what: 'dead tuples counted', timeoutMs: 15_000, intervalMs: 100 });

    expect(await maintenance.runOnce()).toEqual([]);
    expect(await deadTuples()).toBeGreaterThanOrEqual(2_000);
    leads = true;
    expect(await maintenance.runOnce()).toContain('public.dispatch_tasks');
    expect(await deadTuples()).toBeLessThan(500);
  });
});
