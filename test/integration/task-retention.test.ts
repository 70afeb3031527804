import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { ADVISORY_LOCK } from '../../src/db/contract.js';
import { TaskRetention } from '../../src/tasks/retention.js';
import { useTestDatabase } from '../helpers/database.js';
import { insertTasks } from '../helpers/tasks.js';

const database = useTestDatabase();
const WEEK_MS = 7 * 24 * 3_600_000;

describe('task retention', () => {
  it('deletes finished tasks past the window with their events, and keeps what is live, recent or owed to NATS', async () => {
    const { db, pool } = database().handle;
    const metrics = createMetrics();
    const retention = new TaskRetention(pool, { keepFinishedMs: WEEK_MS, intervalMs: 60_000, batchSize: 2 }, createLogger({ level: 'silent' }), metrics);

    const old = [
      ...(await insertTasks(db, 3, { status: 'completed' })),
      ...(await insertTasks(db, 1, { status: 'failed' })),
      ...(await insertTasks(db, 1, { status: 'cancelled' })),
      ...(await insertTasks(db, 1, { status: 'timeout' })),
    ];
    const recent = await insertTasks(db, 2, { status: 'completed' });
    const oldPending = await insertTasks(db, 1, { status: 'pending' });
    const [parent] = await insertTasks(db, 1, { status: 'completed' });
    const [child] = await insertTasks(db, 1, { status: 'running', assignee: 'worker-1', parent_id: parent! });
    const [owed] = await insertTasks(db, 1, { status: 'completed' });
    const all = [...old, ...recent, ...oldPending, parent!, child!, owed!];

    await sql`INSERT INTO dispatch_task_events (task_id, event, payload)
              SELECT id, 'created', '{}'::jsonb FROM unnest(${all}::uuid[]) AS id`.execute(db);
    // The publisher has acknowledged every event but the owed task's.
    await sql`DELETE FROM dispatch_event_outbox o USING dispatch_task_events e
               WHERE e.id = o.id AND e.task_id <> ${owed!}`.execute(db);
    const eightDaysAgo = sql`now() - interval '8 days'`;
    await sql`UPDATE dispatch_tasks SET created_at = ${eightDaysAgo}, completed_at = CASE WHEN completed_at IS NOT NULL THEN ${eightDaysAgo} END
               WHERE id = ANY (${[...old, ...oldPending, parent!, owed!]}::uuid[])`.execute(db);

    expect(await retention.runOnce()).toBe(old.length);

    const remaining = async () =>
      (await sql<{ id: string }>`SELECT id FROM dispatch_tasks ORDER BY id`.execute(db)).rows.map((r) => r.id).sort();
    expect(await remaining()).toEqual([...recent, ...oldPending, parent!, child!, owed!].sort());
    const orphanEvents = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM dispatch_task_events WHERE task_id = ANY (${old}::uuid[])`.execute(db);
    expect(orphanEvents.rows[0]!.n).toBe(0);
    expect((await metrics.registry.getSingleMetric('dispatch_tasks_deleted_total')!.get()).values[0]!.value).toBe(old.length);

    // Published at last, the owed task goes; a child finished just now still keeps its parent.
    await sql`UPDATE dispatch_tasks SET status = 'completed', completed_at = now() WHERE id = ${child!}`.execute(db);
    await sql`DELETE FROM dispatch_event_outbox`.execute(db);
    expect(await retention.runOnce()).toBe(1);
    expect(await remaining()).toEqual([...recent, ...oldPending, parent!, child!].sort());

    // Once the child is past the window too, both go.
    await sql`UPDATE dispatch_tasks SET completed_at = ${eightDaysAgo} WHERE id = ${child!}`.execute(db);
    expect(await retention.runOnce()).toBe(2);
    expect(await remaining()).toEqual([...recent, ...oldPending].sort());
  });

  it('leaves the work to the replica holding the lock, and does nothing when retention is 0', async () => {
    const { db, pool } = database().handle;
    const logger = createLogger({ level: 'silent' });
    const [task] = await insertTasks(db, 1, { status: 'completed' });
    await sql`UPDATE dispatch_tasks SET completed_at = now() - interval '1 hour' WHERE id = ${task!}`.execute(db);
    const keepAll = new TaskRetention(pool, { keepFinishedMs: 0, intervalMs: 60_000, batchSize: 100 }, logger, createMetrics());
    expect(await keepAll.runOnce()).toBe(0);
    const retention = new TaskRetention(pool, { keepFinishedMs: 60_000, intervalMs: 60_000, batchSize: 100 }, logger, createMetrics());

    const other = await pool.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK.taskRetention]);
      expect(await retention.runOnce()).toBe(0);
      await other.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK.taskRetention]);
    } finally {
      other.release();
    }
    expect(await retention.runOnce()).toBe(1);
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE id = ${task!}`.execute(db);
    expect(rows[0]!.n).toBe(0);
  });
});
