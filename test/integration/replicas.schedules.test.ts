import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { spawnReplica, spawnReplicas, type ReplicaProcess } from '../helpers/replica-process.js';

/**
 * A schedule firing every second while three replicas race to fire it and are restarted one at a
 * time, right at the tick, SIGKILL and SIGTERM in turn: every second of the run gets exactly one
 * task, none twice, none skipped.
 */
const RUN_MS = 40_000;
const config = { database: { pool_size: 4 }, worker: { concurrency: 2 }, schedules: { poll_interval_ms: 100 } };

let database: TestDatabase;
let replicas: ReplicaProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  replicas = await spawnReplicas(3, { databaseUrl: database.url, name: 'sched', config });
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop(5_000)));
  await database?.drop();
});

const untilNextTick = () => new Promise((resolve) => setTimeout(resolve, 1_000 - (Date.now() % 1_000)));

it('creates exactly one task per occurrence while replicas restart at the tick', async () => {
  const created = await fetch(`${replicas[0]!.apiUrl}/api/v1/schedules`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-agent-id': 'planner' },
    body: JSON.stringify({ cron: '* * * * * *', template: { title: 'tick', scope: 'ticks' } }),
  });
  expect(created.status).toBe(201);
  const schedule = (await created.json()) as { id: string };

  const end = Date.now() + RUN_MS;
  let restarts = 0;
  while (Date.now() < end - 5_000) {
    const slot = restarts % replicas.length;
    await untilNextTick();
    replicas[slot]!.kill(restarts % 2 === 0 ? 'SIGKILL' : 'SIGTERM');
    await replicas[slot]!.exited;
    replicas[slot] = await spawnReplica({ databaseUrl: database.url, name: `sched-${restarts}`, config });
    restarts++;
  }
  while (Date.now() < end) await untilNextTick();
  await sql`UPDATE dispatch_schedules SET paused = true, next_run_at = NULL WHERE id = ${schedule.id}`.execute(database.handle.db);

  const { rows } = await sql<{ key: string; requester: string; late_ms: number }>`
    SELECT idempotency_key AS key, requester,
           extract(epoch FROM created_at - split_part(idempotency_key, '@', 2)::timestamptz) * 1000 AS late_ms
      FROM dispatch_tasks WHERE idempotency_key LIKE ${`schedule:${schedule.id}@%`} ORDER BY idempotency_key`.execute(database.handle.db);
  const seconds = rows.map((r) => Date.parse(r.key.split('@')[1]!) / 1000);
  expect(restarts).toBeGreaterThanOrEqual(3);
  expect(rows.length).toBeGreaterThanOrEqual(RUN_MS / 1_000 - 5);
  // Consecutive seconds from the first to the last: none skipped, none twice.
  expect(seconds).toEqual(seconds.map((_, i) => seconds[0]! + i));
  expect(new Set(rows.map((r) => r.requester))).toEqual(new Set(['planner']));
  // Each on time: a replica restarting never held an occurrence back for long.
  expect(Math.max(...rows.map((r) => Number(r.late_ms)))).toBeLessThan(5_000);
}, 120_000);
