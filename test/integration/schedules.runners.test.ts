import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import type { Metrics } from '../../src/observability/metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import { insertSchedule } from '../../src/schedules/schedule.queries.js';
import { ScheduleRunner } from '../../src/schedules/schedule.runner.js';
import { createTestDatabase } from '../helpers/database.js';

/**
 * Four ScheduleRunners (the class every replica runs), each on its own connection pool share,
 * polling every 10 ms against one schedule firing every second: each second gets exactly one
 * task, and the runners together report creating exactly as many tasks as exist (no occurrence
 * fired twice and answered by its Idempotency-Key).
 */
const database = await createTestDatabase();
afterAll(() => database.drop());

const POLICY = { defaultTimeoutMs: 60_000, defaultStartTimeoutMs: null, retry: { backoffBaseMs: 1_000, backoffMaxMs: 1_000 } };

/** A schedule firing every second, its first occurrence `after` the database clock's current whole second. */
async function everySecond(scope: string, after: string) {
  const { rows } = await sql<{ at: Date }>`SELECT date_trunc('second', now()) + ${after}::interval AS at`.execute(database.handle.db);
  return await insertSchedule(database.handle.db, 'planner', {
    cron: '* * * * * *',
    time_zone: 'UTC',
    catch_up: 'skip',
    paused: false,
    template: { title: scope, scope, priority: 3, max_retries: 1 },
    next_run_at: rows[0]!.at,
  });
}

it('fires each occurrence once with four runners racing', async () => {
  const db = database.handle.db;
  let counted = 0;
  const metrics = { taskTransitions: { inc: (labels: { event: string }) => void (labels.event === 'created' && counted++) } } as unknown as Pick<Metrics, 'taskTransitions'>;
  const schedule = await everySecond('ticks', '1 second');
  const runners = Array.from({ length: 4 }, () => new ScheduleRunner({ db, policy: POLICY, metrics }, { intervalMs: 10, lateAfterMs: 60_000, batchSize: 20 }, createLogger({ level: 'silent' })));
  let created = 0;
  const until = Date.now() + 6_000;
  await Promise.all(
    runners.map(async (runner) => {
      while (Date.now() < until) {
        const n = await runner.runOnce();
        created += n;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }),
  );
  const tasks = await sql<{ key: string }>`
    SELECT idempotency_key AS key FROM dispatch_tasks WHERE idempotency_key LIKE ${`schedule:${schedule.id}@%`} ORDER BY 1`.execute(db);
  const seconds = tasks.rows.map((r) => Date.parse(r.key.split('@')[1]!) / 1000);
  expect(seconds.length).toBeGreaterThanOrEqual(4);
  expect(seconds).toEqual(seconds.map((_, i) => seconds[0]! + i));
  expect(created).toBe(seconds.length);
  expect(counted).toBe(seconds.length);
}, 30_000);

it('polls with one statement and no transaction while nothing is due, and fires in a transaction once something is', async () => {
  // The runner's own pool, every statement it sends recorded on the way to the server.
  const handle = openDatabase(database.url, 1, 'schedule-poll-test');
  const sent: string[] = [];
  handle.pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
      sent.push(text.trim().split(/\s+/).slice(0, 2).join(' ').toLowerCase());
      return query(...args);
    };
  });
  try {
    const metrics = { taskTransitions: { inc: () => undefined } } as unknown as Pick<Metrics, 'taskTransitions'>;
    const runner = new ScheduleRunner({ db: handle.db, policy: POLICY, metrics }, { intervalMs: 10, lateAfterMs: 60_000, batchSize: 20 }, createLogger({ level: 'silent' }));
    const db = database.handle.db;
    await sql`UPDATE dispatch_schedules SET next_run_at = now() + interval '1 hour'`.execute(db);

    for (let i = 0; i < 3; i++) expect(await runner.runOnce()).toBe(0);
    expect(sent).toEqual(['select exists', 'select exists', 'select exists']);

    sent.length = 0;
    const schedule = await everySecond('polls', '0 seconds');
    expect(await runner.runOnce()).toBe(1);
    expect(sent[0]).toBe('select exists');
    expect(sent).toContain('begin');
    expect(sent.at(-1)).toBe('commit');
    const fired = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE idempotency_key LIKE ${`schedule:${schedule.id}@%`}`.execute(db);
    expect(fired.rows[0]!.n).toBe(1);
  } finally {
    await handle.close();
  }
});
