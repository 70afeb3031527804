import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { timeOutDueAttempts } from '../../src/lifecycle/due.queries.js';
import { completeTask } from '../../src/tasks/task.queries.js';
import { useTaskApi } from '../helpers/task-api.js';
import { assignDirectly, createTask, eventNames, expectError } from '../helpers/tasks.js';

/**
 * depends_on: a task waits (status `waiting`) until its dependencies complete, is released in the
 * transaction that completes the last one, and is cancelled, naming the dependency, when one
 * fails, is cancelled or times out (unless on_dependency_failure is "run"); chains follow. Real
 * HTTP, real PostgreSQL, header mode (token-mode access rules: dependencies.access.test.ts).
 */
const { api, db } = await useTaskApi();

const get = async (id: string) => (await api('GET', `/api/v1/tasks/${id}`)).body;
const complete = async (id: string, agent = 'worker-1') => {
  await assignDirectly(db, id, agent);
  const response = await api('POST', `/api/v1/tasks/${id}/complete`, { agent, body: { result: { done: id } } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
};
const fail = async (id: string, agent = 'worker-1') => {
  await assignDirectly(db, id, agent);
  const response = await api('POST', `/api/v1/tasks/${id}/fail`, { agent, body: { error: 'broken', retryable: false } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
};

describe('a chain', () => {
  it('waits for its dependency, says so, and is pending the moment the dependency completes', async () => {
    const a = await createTask(api, { title: 'a' });
    const b = await createTask(api, { title: 'b', depends_on: [a.id] });
    const c = await createTask(api, { title: 'c', depends_on: [b.id] });
    expect(b).toMatchObject({ status: 'waiting', waiting_on: 1, depends_on: [a.id], waiting_for: [a.id], on_dependency_failure: 'cancel' });
    expect(await get(c.id)).toMatchObject({ status: 'waiting', waiting_on: 1, depends_on: [b.id], waiting_for: [b.id] });
    const placement = await api('GET', `/api/v1/tasks/${b.id}/placement`);
    expect(placement.body.waiting_because).toEqual([expect.stringMatching(/^waiting for 1 dependency/)]);

    await complete(a.id);
    // Released in the completion's own transaction: pending as soon as the call returns.
    expect(await get(b.id)).toMatchObject({ status: 'pending', waiting_on: 0, depends_on: [a.id], waiting_for: [] });
    expect(await eventNames(db, b.id)).toEqual(['created', 'released']);
    expect((await get(c.id)).status).toBe('waiting');

    await complete(b.id);
    expect((await get(c.id)).status).toBe('pending');
  });

  it('starts pending when every dependency has already completed', async () => {
    const a = await createTask(api);
    await complete(a.id);
    const b = await createTask(api, { depends_on: [a.id] });
    expect(b).toMatchObject({ status: 'pending', waiting_on: 0, depends_on: [a.id], waiting_for: [] });
  });
});

describe('failures propagate', () => {
  it('cancel: the whole chain is cancelled, each naming its own dependency; run: released anyway', async () => {
    const a = await createTask(api, { title: 'root' });
    const b = await createTask(api, { depends_on: [a.id] });
    const c = await createTask(api, { depends_on: [b.id] });
    const d = await createTask(api, { depends_on: [c.id] });
    const runner = await createTask(api, { depends_on: [a.id], on_dependency_failure: 'run' });
    const afterRunner = await createTask(api, { depends_on: [runner.id] });

    await fail(a.id);

    const [bNow, cNow, dNow] = [await get(b.id), await get(c.id), await get(d.id)];
    expect(bNow).toMatchObject({ status: 'cancelled', error: `dependency ${a.id} ended failed` });
    expect(cNow).toMatchObject({ status: 'cancelled', error: `dependency ${b.id} ended cancelled` });
    expect(dNow).toMatchObject({ status: 'cancelled', error: `dependency ${c.id} ended cancelled` });
    expect(dNow.completed_at).not.toBeNull();
    const events = await api('GET', `/api/v1/tasks/${b.id}/events`);
    expect(events.body.events.at(-1)).toMatchObject({
      event: 'cancelled',
      payload: { cancelled_by: 'dependency', dependency_id: a.id, dependency_status: 'failed' },
    });
    expect(await get(runner.id)).toMatchObject({ status: 'pending', waiting_on: 0 });
    expect((await get(afterRunner.id)).status).toBe('waiting');
  });

  it('a cancel (PATCH) and a timeout end dependents too', async () => {
    const cancelled = await createTask(api);
    const viaCancel = await createTask(api, { depends_on: [cancelled.id] });
    expect((await api('PATCH', `/api/v1/tasks/${cancelled.id}`, { body: { status: 'cancelled' } })).status).toBe(200);
    expect(await get(viaCancel.id)).toMatchObject({ status: 'cancelled', error: `dependency ${cancelled.id} ended cancelled` });

    const timedOut = await createTask(api, { max_retries: 0 });
    const viaTimeout = await createTask(api, { depends_on: [timedOut.id] });
    const held = await assignDirectly(db, timedOut.id, 'worker-1');
    await sql`UPDATE dispatch_tasks SET deadline_at = now() - interval '1 second' WHERE id = ${held.id}`.execute(db);
    expect(await timeOutDueAttempts(db, { backoffBaseMs: 10, backoffMaxMs: 10 }, 500)).toEqual([{ id: held.id, status: 'timeout', attempt: held.attempt }]);
    expect(await get(viaTimeout.id)).toMatchObject({ status: 'cancelled', error: `dependency ${timedOut.id} ended timeout` });
  });

  it('a waiting task can itself be cancelled, and cancels its own dependents', async () => {
    const a = await createTask(api);
    const b = await createTask(api, { depends_on: [a.id] });
    const c = await createTask(api, { depends_on: [b.id] });
    expect((await api('PATCH', `/api/v1/tasks/${b.id}`, { body: { status: 'cancelled' } })).body.status).toBe('cancelled');
    expect(await get(c.id)).toMatchObject({ status: 'cancelled', error: `dependency ${b.id} ended cancelled` });
    expect((await get(a.id)).status).toBe('pending');
  });

  it('a chain of 400 is cancelled in one go (settled level by level, not by recursion)', async () => {
    const root = await createTask(api);
    // Written directly: 400 creates over HTTP would only slow the test down.
    const chain = await seedTasks(400, 'waiting', 1);
    await sql`INSERT INTO dispatch_task_dependencies (task_id, depends_on_id)
              SELECT id, coalesce(lag(id) OVER (ORDER BY n), ${root.id}::uuid)
                FROM unnest(${chain}::uuid[]) WITH ORDINALITY AS c(id, n)`.execute(db);
    expect((await api('PATCH', `/api/v1/tasks/${root.id}`, { body: { status: 'cancelled' } })).status).toBe(200);
    const { rows } = await sql<{ status: string; n: number }>`
      SELECT status, count(*)::int AS n FROM dispatch_tasks WHERE id = ANY(${chain}::uuid[]) GROUP BY status`.execute(db);
    expect(rows).toEqual([{ status: 'cancelled', n: 400 }]);
    expect((await get(chain.at(-1)!)).error).toBe(`dependency ${chain.at(-2)} ended cancelled`);
  }, 60_000);
});

describe('fan-in', () => {
  it('100 dependencies completed at once release their dependent exactly once, after the last', async () => {
    const deps = await Promise.all(Array.from({ length: 100 }, () => createTask(api)));
    const ids = deps.map((d) => d.id as string);
    const joined = await createTask(api, { depends_on: ids });
    expect(joined).toMatchObject({ status: 'waiting', waiting_on: 100 });
    await complete(ids[0]!);
    expect(await get(joined.id)).toMatchObject({ status: 'waiting', waiting_on: 99 });
    await Promise.all(ids.slice(1).map((id, i) => complete(id, `worker-${i % 7}`)));
    expect(await get(joined.id)).toMatchObject({ status: 'pending', waiting_on: 0, waiting_for: [] });
    expect((await eventNames(db, joined.id)).filter((e) => e === 'released')).toHaveLength(1);
  });

  it('1,000 dependencies (beyond the API limit, written directly) release one dependent, without deadlock', async () => {
    const deps = await seedTasks(1000, 'pending');
    const [dependent] = await seedTasks(1, 'waiting', 1000);
    await sql`INSERT INTO dispatch_task_dependencies (task_id, depends_on_id) SELECT ${dependent}::uuid, unnest(${deps}::uuid[])`.execute(db);
    // Ten concurrent transactions each completing 100 of them in one statement.
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        sql`UPDATE dispatch_tasks SET status = 'completed', completed_at = now() WHERE id = ANY(${deps.slice(i * 100, i * 100 + 100)}::uuid[])`.execute(db),
      ),
    );
    expect(await get(dependent!)).toMatchObject({ status: 'pending', waiting_on: 0 });
  });
});

describe('fan-out', () => {
  it('one completion releases 10,000 dependents in its transaction, without a sequential scan of dispatch_tasks', async () => {
    const root = await createTask(api, { scope: 'fanout-none' });
    // Other tasks, so a scan would have something to read, and more of them than dependents: a
    // scan of 15,000 rows for 10,000 of them is a fair plan, and the test is about not reading
    // the whole table per released task or per statement whatever its size.
    await seedTasks(50_000, 'completed');
    const dependents = await seedTasks(10_000, 'waiting', 1);
    await sql`INSERT INTO dispatch_task_dependencies (task_id, depends_on_id) SELECT unnest(${dependents}::uuid[]), ${root.id}::uuid`.execute(db);
    await sql`ANALYZE dispatch_tasks; ANALYZE dispatch_task_dependencies`.execute(db);
    const held = await assignDirectly(db, root.id, 'worker-1');

    // pg_stat_xact_user_tables: this transaction's own reads of the table, trigger statements included.
    const scans = await db.transaction().execute(async (tx) => {
      expect(await completeTask(tx, { taskId: held.id, agent: 'worker-1', attempt: held.attempt }, null)).toBeDefined();
      const { rows } = await sql<{ seq_scan: number; idx_tup_fetch: number }>`
        SELECT seq_scan::int, idx_tup_fetch::int FROM pg_stat_xact_user_tables WHERE relname = 'dispatch_tasks'`.execute(tx);
      return rows[0]!;
    });
    expect(scans.seq_scan).toBe(0);
    // Index fetches grow with the dependents (10 to 12.4 each once every feature's triggers run,
    // with the plans the table's statistics give: lock, update, the events' foreign key, the
    // statement triggers' lookups), never with the 60,000 rows of the table each time (a join on
    // the wrong key reads the table per dependent).
    expect(scans.idx_tup_fetch).toBeLessThan(20 * 10_000);
    const { rows } = await sql<{ status: string; n: number }>`
      SELECT status, count(*)::int AS n FROM dispatch_tasks WHERE id = ANY(${dependents}::uuid[]) GROUP BY status`.execute(db);
    expect(rows).toEqual([{ status: 'pending', n: 10_000 }]);
    const released = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM dispatch_task_events WHERE task_id = ANY(${dependents}::uuid[]) AND event = 'released'`.execute(db);
    expect(released.rows[0]!.n).toBe(10_000);
  }, 180_000);
});

describe('counters and views', () => {
  it('count waiting tasks apart from pending ones', async () => {
    const scope = `waitcount-${randomUUID().slice(0, 6)}`;
    const a = await createTask(api, { scope });
    await createTask(api, { scope, depends_on: [a.id] });
    await createTask(api, { scope, depends_on: [a.id] });
    const counts = async () => {
      const { rows } = await sql<{ status: string; n: number }>`
        SELECT status, sum(tasks)::int AS n FROM dispatch_scope_counts WHERE scope = ${scope} GROUP BY status HAVING sum(tasks) <> 0 ORDER BY status`.execute(db);
      return rows;
    };
    expect(await counts()).toEqual([
      { status: 'pending', n: 1 },
      { status: 'waiting', n: 2 },
    ]);
    const view = await sql<{ id: string; open_dependencies: string[] }>`SELECT id, open_dependencies FROM dispatch_waiting_tasks WHERE scope = ${scope}`.execute(db);
    expect(view.rows.map((r) => r.open_dependencies)).toEqual([[a.id], [a.id]]);
    await complete(a.id);
    expect(await counts()).toEqual([{ status: 'pending', n: 2 }]);
  });
});

describe('bad input', () => {
  it('answers 4xx naming the field', async () => {
    const a = await createTask(api);
    expectError(await api('POST', '/api/v1/tasks', { body: { title: 't', scope: 's', depends_on: ['nope'] } }), 400, 'validation_failed', 'depends_on.0');
    expectError(await api('POST', '/api/v1/tasks', { body: { title: 't', scope: 's', depends_on: [a.id, randomUUID()] } }), 400, 'validation_failed', 'depends_on.1');
    expectError(await api('POST', '/api/v1/tasks', { body: { title: 't', scope: 's', depends_on: [a.id, a.id] } }), 400, 'validation_failed', 'depends_on');
    const many = Array.from({ length: 101 }, () => randomUUID());
    expectError(await api('POST', '/api/v1/tasks', { body: { title: 't', scope: 's', depends_on: many } }), 400, 'validation_failed', 'depends_on');
    expectError(await api('POST', '/api/v1/tasks', { body: { title: 't', scope: 's', depends_on: a.id } }), 400, 'validation_failed', 'depends_on');
    expectError(
      await api('POST', '/api/v1/tasks', { body: { title: 't', scope: 's', depends_on: [a.id], on_dependency_failure: 'retry' } }),
      400,
      'validation_failed',
      'on_dependency_failure',
    );
  });

  it('refuses a dependency that already failed unless the policy is run', async () => {
    const a = await createTask(api);
    await fail(a.id);
    const refused = await api('POST', '/api/v1/tasks', { body: { title: 't', scope: 's', depends_on: [a.id] } });
    expectError(refused, 409, 'conflict', 'depends_on.0');
    expect(await createTask(api, { depends_on: [a.id], on_dependency_failure: 'run' })).toMatchObject({ status: 'pending', waiting_on: 0 });
  });
});

/** Seeds `count` tasks straight into the table (a scale the API limit or a test's time would not allow). */
async function seedTasks(count: number, status: 'pending' | 'waiting' | 'completed', waitingOn = 0): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    INSERT INTO dispatch_tasks (requester, title, scope, status, waiting_on, completed_at)
    SELECT 'seeder', 'seeded ' || n, 'fanout-none', ${status}, ${waitingOn}, CASE WHEN ${status} = 'completed' THEN now() END
      FROM generate_series(1, ${count}) AS n
    RETURNING id`.execute(db);
  return rows.map((r) => r.id);
}
