import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
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

it('fires each occurrence once with four runners racing', async () => {
  const db = database.handle.db;
  let counted = 0;
  const metrics = { taskTransitions: { inc: (labels: { event: string }) => void (labels.event === 'created' && counted++) } } as unknown as Pick<Metrics, 'taskTransitions'>;
  const policy = { defaultTimeoutMs: 60_000, defaultStartTimeoutMs: null, retry: { backoffBaseMs: 1_000, backoffMaxMs: 1_000 } };
  const { rows } = await sql<{ at: Date }>`SELECT date_trunc('second', now()) + interval '1 second' AS at`.execute(db);
  const schedule = await insertSchedule(db, 'planner', {
    cron: '* * * * * *',
    time_zone: 'UTC',
    catch_up: 'skip',
    paused: false,
    template: { title: 'tick', scope: 'ticks', priority: 3, max_retries: 1 },
    next_run_at: rows[0]!.at,
  });
  const runners = Array.from({ length: 4 }, () => new ScheduleRunner({ db, policy, metrics }, { intervalMs: 10, lateAfterMs: 60_000, batchSize: 20 }, createLogger({ level: 'silent' })));
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
