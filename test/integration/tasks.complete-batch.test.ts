import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { auditAssignments } from '../helpers/assignment-audit.js';
import { useTestDatabase } from '../helpers/database.js';
import { startTestDispatch } from '../helpers/dispatch.js';
import { SimulatedAgents } from '../helpers/simulated-agents.js';
import { completeTasks } from '../../src/tasks/task.queries.js';
import { insertTasks } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Completions are group-committed (src/tasks/task.batcher.ts): one statement completes the
 * tasks of many agents, and its trigger counts them in those agents' releases rows (migration
 * 0022) while the assigner locks the agents' own rows. 40 agents complete 3,000 tasks over REST as fast as they can while the assigner keeps
 * handing out more; PostgreSQL must never have to break a deadlock (a deadlock is retried, so
 * every task would still end completed: the server's own counter is the witness).
 */
const database = useTestDatabase();

const AGENTS = 40;
const TASKS = 3_000;
const LIMIT = 4;

async function deadlocksSoFar(): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()`.execute(database().handle.db);
  return rows[0]!.n;
}

describe('group-committed completions', () => {
  it(`${AGENTS} agents complete ${TASKS} tasks while the assigner runs: each once, batches span agents, no deadlock`, async () => {
    const { db } = database().handle;
    const before = await deadlocksSoFar();
    const dispatch = await startTestDispatch(database().url, { assignment: { max_concurrent_per_agent: LIMIT } });
    let agents: SimulatedAgents | undefined;
    try {
      agents = await SimulatedAgents.start({
        urls: [dispatch.baseUrl],
        count: AGENTS,
        namePrefix: 'batch-agent',
        capabilities: () => ['batch'],
        idlePollMs: 20,
        deadlineMs: 120_000,
      });
      for (let i = 0; i < TASKS / 500; i++) await insertTasks(db, 500, { scope: 'batch' });
      await waitFor(
        async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status <> 'completed'`.execute(db)).rows[0]!.n === 0,
        { timeoutMs: 110_000, intervalMs: 200, what: 'every task completed' },
      );
      const stats = await agents.stop();
      agents = undefined;
      expect(stats.completed).toBe(TASKS);
      expect(stats.httpErrors).toBe(0);
      expect(stats.conflicts).toBe(0);
    } finally {
      await agents?.stop();
      // Closing the pools ends the backends, which publishes their statistics (deadlocks included).
      await dispatch.stop();
    }

    const audit = await auditAssignments(db, LIMIT);
    expect(audit.doubleAssignments).toEqual([]);
    expect(audit.limitBreaches).toEqual([]);
    const completions = await sql<{ events: number; spanning: number }>`
      SELECT count(*)::int AS events,
             (SELECT count(*)::int FROM (SELECT tx FROM dispatch_task_events WHERE event = 'completed'
                                          GROUP BY tx HAVING count(DISTINCT agent_id) > 1) s) AS spanning
        FROM dispatch_task_events WHERE event = 'completed'`.execute(db);
    expect(completions.rows[0]!.events).toBe(TASKS);
    // The race was real: transactions committed several agents' completions together.
    expect(completions.rows[0]!.spanning).toBeGreaterThan(0);
    const counters = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_agent_load WHERE active_tasks <> 0`.execute(db);
    expect(counters.rows[0]!.n).toBe(0);
    // A backend publishes its statistics as it exits: wait until Dispatch's have.
    await waitFor(
      async () =>
        (
          await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
                                    WHERE datname = current_database() AND backend_type = 'client backend'
                                      AND application_name <> 'dispatch-test'`.execute(db)
        ).rows[0]!.n === 0,
      { what: "Dispatch's connections closed" },
    );
    expect(await deadlocksSoFar()).toBe(before);
  }, 150_000);

  it("completes tasks while the assigner holds their agents' rows: finishing never waits for a batch", async () => {
    const { db } = database().handle;
    await sql`INSERT INTO dispatch_agents (name, capabilities, status) VALUES ('lock-a', '{lock}', 'ready'), ('lock-b', '{lock}', 'ready')`.execute(db);
    const [forB] = await insertTasks(db, 1, { scope: 'lock', status: 'assigned', assignee: 'lock-b' });
    const [forA] = await insertTasks(db, 1, { scope: 'lock', status: 'assigned', assignee: 'lock-a' });
    const load = async () =>
      (await sql<{ name: string; active_tasks: number }>`SELECT name, active_tasks FROM dispatch_agent_load WHERE name LIKE 'lock-%' ORDER BY name`.execute(db)).rows;
    const columns = async () =>
      (await sql<{ name: string; active_tasks: number }>`SELECT name, active_tasks FROM dispatch_agents WHERE name LIKE 'lock-%' ORDER BY name`.execute(db)).rows;
    // As an assignment batch does (lockAgentsAndClaim): the free agents locked, in name order,
    // for the whole batch.
    await db.transaction().execute(async (tx) => {
      await sql`SELECT 1 FROM dispatch_agents WHERE name LIKE 'lock-%' ORDER BY name FOR UPDATE`.execute(tx);
      let completed: Array<{ id: string; result: unknown } | undefined> | undefined;
      const completing = completeTasks(db, [
        { call: { taskId: forB!, agent: 'lock-b', attempt: 1 }, resultJson: '"b"' },
        { call: { taskId: forA!, agent: 'lock-a', attempt: 1 }, resultJson: '"a"' },
      ]).then((tasks) => (completed = tasks));
      await waitFor(async () => completed, { what: 'the completion, while the batch holds both agents', timeoutMs: 5_000 });
      await completing;
      expect(completed!.map((task) => [task?.id, task?.result])).toEqual([
        [forB, 'b'],
        [forA, 'a'],
      ]);
      // The load is live at once; the rows the batch holds are folded later.
      expect(await load()).toEqual([
        { name: 'lock-a', active_tasks: 0 },
        { name: 'lock-b', active_tasks: 0 },
      ]);
      await sql`SELECT dispatch_fold_agent_releases()`.execute(db);
      expect(await columns()).toEqual([
        { name: 'lock-a', active_tasks: 1 },
        { name: 'lock-b', active_tasks: 1 },
      ]);
    });
    await sql`SELECT dispatch_fold_agent_releases()`.execute(db);
    expect(await columns()).toEqual([
      { name: 'lock-a', active_tasks: 0 },
      { name: 'lock-b', active_tasks: 0 },
    ]);
  });
});
