import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

/*
 * Attempts time out from their deadline_at (migration 0023) by the due timer of every replica:
 * the lease holder at the deadline, the others at each safety pass. Here two replicas, their
 * safety passes every 50 ms, time attempts out while their agent completes them, deadlines
 * spread across the completions: each attempt must end exactly once, by whichever came first.
 */

const TASKS = 300;
let database: TestDatabase;
const replicas: TestDispatch[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  for (let i = 0; i < 2; i += 1) {
    replicas.push(await startTestDispatch(database.url, { assignment: { tick_interval_ms: 50 }, lifecycle: { sweep_interval_ms: 50 } }));
  }
});
afterAll(async () => {
  for (const replica of replicas) await replica.stop();
  await database?.drop();
});

describe('timeouts racing completions, two replicas', () => {
  it('ends every attempt once: completed (200) or timed out (409 to the late completion), never both', async () => {
    const db = database.handle.db;
    const [first, second] = replicas.map((r) => apiClient(r.baseUrl, 'racer'));
    expect((await first!('PUT', '/api/v1/agents/racer', { body: { capabilities: ['race'], max_concurrent: TASKS } })).status).toBe(200);
    const ids: string[] = [];
    for (let i = 0; i < TASKS; i += 1) {
      const created = await first!('POST', '/api/v1/tasks', { body: { title: `race ${i}`, scope: 'race', timeout_ms: 600_000, max_retries: 0 } });
      expect(created.status).toBe(201);
      ids.push(created.body.id as string);
    }
    await waitFor(async () => {
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status = 'assigned'`.execute(db);
      return rows[0]!.n === TASKS;
    }, { what: 'every task assigned' });

    // Deadlines spread over the next 300 ms, in no particular order, while the agent completes the
    // tasks in creation order, through both replicas, as fast as they take them.
    await sql`UPDATE dispatch_tasks SET deadline_at = now() + random() * interval '300 milliseconds' WHERE status = 'assigned'`.execute(db);
    const answers = new Map<string, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, lane) => {
        const api = lane % 2 === 0 ? first! : second!;
        while (next < ids.length) {
          const id = ids[next++]!;
          answers.set(id, (await api('POST', `/api/v1/tasks/${id}/complete`, { body: { result: { lane } } })).status);
        }
      }),
    );
    await waitFor(async () => {
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status IN ('assigned', 'running')`.execute(db);
      return rows[0]!.n === 0;
    }, { what: 'every attempt ended' });

    const { rows } = await sql<{ id: string; status: string; endings: string[] }>`
      SELECT t.id, t.status, array_agg(e.event ORDER BY e.id) FILTER (WHERE e.event IN ('completed', 'timeout_retry', 'timeout_exhausted')) AS endings
        FROM dispatch_tasks t JOIN dispatch_task_events e ON e.task_id = t.id
       GROUP BY t.id, t.status`.execute(db);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const mismatches = ids.flatMap((id) => {
      const task = byId.get(id)!;
      const expected = answers.get(id) === 200 ? { status: 'completed', endings: ['completed'] } : { status: 'timeout', endings: ['timeout_exhausted'] };
      return task.status === expected.status && JSON.stringify(task.endings) === JSON.stringify(expected.endings) && [200, 409].includes(answers.get(id)!)
        ? []
        : [{ id, answer: answers.get(id), status: task.status, endings: task.endings }];
    });
    expect(mismatches).toEqual([]);
    const completed = rows.filter((r) => r.status === 'completed').length;
    console.log(`timeout race: ${completed} completed, ${TASKS - completed} timed out`);
    // Both outcomes happened, or nothing raced.
    expect(completed).toBeGreaterThan(0);
    expect(completed).toBeLessThan(TASKS);
    // Each ending released the agent's slot once.
    const { rows: load } = await sql<{ active_tasks: number }>`SELECT active_tasks FROM dispatch_agent_load WHERE name = 'racer'`.execute(db);
    expect(load).toEqual([{ active_tasks: 0 }]);
  });
});
