import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openPlanCapture } from '../../bench/lib/query-plans.js';
import { Assigner } from '../../src/assignment/assigner.js';
import { claimPendingTasks } from '../../src/assignment/assignment.queries.js';
import { DueTimer } from '../../src/lifecycle/due-timer.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { insertTask } from '../../src/tasks/task.queries.js';
import { useTestDatabase } from '../helpers/database.js';
import { insertTasks, newTaskRow } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The claim and the due timer driven step by step on a database no Dispatch runs on, so nothing
 * else assigns or expires behind the test's back.
 */

const database = useTestDatabase();
const logger = createLogger({ level: 'silent' });


async function addAgent(name: string, scope: string) {
  await sql`INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent) VALUES (${name}, ${[scope]}, 'ready', 10)`.execute(database().handle.db);
}

async function statusOf(id: string) {
  const { rows } = await sql<{ status: string; timeout_reason: string | null }>`
    SELECT status, timeout_reason FROM dispatch_tasks WHERE id = ${id}`.execute(database().handle.db);
  return rows[0];
}

describe('the claim', () => {
  it('passes over a task past its start_by, which the due timer then expires', async () => {
    const { db, pool } = database().handle;
    await addAgent('claimer', 'expiring');
    const expiring = (await insertTask(db, newTaskRow('expiring', { schedule_to_start_timeout_ms: 1 })))!;
    const plain = (await insertTask(db, newTaskRow('expiring')))!;
    await waitFor(async () => {
      const { rows } = await sql<{ past: boolean }>`SELECT start_by < now() AS past FROM dispatch_tasks WHERE id = ${expiring.id}`.execute(db);
      return rows[0]!.past;
    });
    const assigner = new Assigner(db, { api: pool, direct: pool }, { batchSize: 10, defaultMaxConcurrent: 3 }, logger, createMetrics());
    expect(await assigner.assignBatch()).toEqual({ claimed: 1, assigned: 1 });
    expect(await statusOf(plain.id)).toMatchObject({ status: 'assigned' });
    expect(await statusOf(expiring.id)).toMatchObject({ status: 'pending' });

    const leading = { holds: () => true, tryTake: () => Promise.resolve(true) };
    const timer = new DueTimer(db, leading, { safetyIntervalMs: 60_000, retry: { backoffBaseMs: 10, backoffMaxMs: 10 } }, logger, createMetrics());
    expect(await timer.runOnce()).toMatchObject({ expired: 1, timedOut: 0 });
    expect(await statusOf(expiring.id)).toEqual({ status: 'timeout', timeout_reason: 'expired' });
  });

  it('takes pending work in rank order: priority raised one level per aging_ms waited, recomputed when the priority changes', async () => {
    const { db } = database().handle;
    // Inserted the way a DBA would, without a rank: the trigger computes it with the session's aging.
    const ids = await db.transaction().execute(async (tx) => {
      await sql`SELECT set_config('dispatch.aging_ms', '1000', true)`.execute(tx);
      const { rows } = await sql<{ id: string; title: string }>`
        INSERT INTO dispatch_tasks (requester, title, scope, priority, created_at)
        VALUES ('dba', 'old p5', 'aging', 5, now() - interval '10 s'),
               ('dba', 'new p1', 'aging', 1, now()),
               ('dba', 'p3', 'aging', 3, now() - interval '1 s'),
               ('dba', 'recent p1', 'aging', 1, now() - interval '500 ms')
        RETURNING id, title`.execute(tx);
      return Object.fromEntries(rows.map((r) => [r.title, r.id]));
    });
    const order = async () =>
      await db.transaction().execute(async (tx) => (await claimPendingTasks(tx, ['aging'], 10)).map((t) => Object.keys(ids).find((k) => ids[k] === t.id)));
    // old p5 ranks at -10 s + 4 x 1 s = -6 s, ahead of every priority-1 task that came after -6 s.
    expect(await order()).toEqual(['old p5', 'recent p1', 'new p1', 'p3']);
    await db.transaction().execute(async (tx) => {
      await sql`SELECT set_config('dispatch.aging_ms', '1000', true)`.execute(tx);
      await sql`UPDATE dispatch_tasks SET priority = 1 WHERE id = ${ids.p3!}`.execute(tx);
    });
    expect(await order()).toEqual(['old p5', 'p3', 'recent p1', 'new p1']);
  });

  it('reads the scope\'s rank index, never the whole table, with a large backlog and many delayed tasks', async () => {
    const { db } = database().handle;
    await insertTasks(db, 20_000, { scope: 'backlog', priority: 4 });
    // Delayed priority-1 tasks rank ahead of the backlog until they are due; the claim walks past them.
    for (let i = 0; i < 5; i++) {
      await sql`
        INSERT INTO dispatch_tasks (requester, title, scope, priority, run_at, not_before)
        SELECT 'dba', 'later', 'backlog', 1, now() + interval '1 hour', now() + interval '1 hour' FROM generate_series(1, 1000)`.execute(db);
    }
    await sql`ANALYZE dispatch_tasks`.execute(db);
    const capture = openPlanCapture(database().url, ['dispatch_tasks']);
    try {
      const plans = await capture.plansOf(() => capture.handle.db.transaction().execute((tx) => claimPendingTasks(tx, ['backlog'], 500)));
      const claim = plans.find((p) => p.access.some((a) => a.includes('dispatch_tasks_pending_scope_rank_idx')));
      expect(claim, JSON.stringify(plans)).toBeDefined();
      expect(claim!.seqScan).toBe(false);
      // The sorts are of the candidates (the batch of 500 and 64 more for rows held elsewhere): never the backlog.
      const sorted = claim!.access.filter((a) => a.startsWith('Sort')).map((a) => Number(/^Sort of (\d+) rows/.exec(a)?.[1]));
      expect(sorted.every((rows) => rows <= 564), JSON.stringify(claim!.access)).toBe(true);
    } finally {
      await capture.handle.close();
    }
  });

  it('never steps over a backlog of scopes no free agent serves, however far ahead it ranks', async () => {
    const { db } = database().handle;
    // 20,000 tasks of a broken service, requeued: old, so they rank ahead of everything served.
    await sql`
      INSERT INTO dispatch_tasks (requester, title, scope, created_at, rank)
      SELECT 'dba', 'requeued', 'outage', now() - interval '1 hour', now() - interval '1 hour' FROM generate_series(1, 20000)`.execute(db);
    const live = await insertTasks(db, 20, { scope: 'served' });
    await sql`ANALYZE dispatch_tasks`.execute(db);
    const capture = openPlanCapture(database().url, ['dispatch_tasks']);
    try {
      let claimed: string[] = [];
      const plans = await capture.plansOf(() =>
        capture.handle.db.transaction().execute(async (tx) => {
          claimed = (await claimPendingTasks(tx, ['served'], 500)).map((t) => t.id);
        }),
      );
      expect(claimed.sort()).toEqual([...live].sort());
      const claim = plans.find((p) => p.access.some((a) => a.includes('dispatch_tasks_pending_scope_rank_idx')))!;
      // 20 index entries and 20 rows, a few pages: not the 20,000 entries ranked ahead of them.
      expect(claim.buffers, JSON.stringify(claim)).toBeLessThan(200);
    } finally {
      await capture.handle.close();
    }
  });
});
