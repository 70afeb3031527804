import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { applyAssignments, claimPendingTasks, lockAgentsAndClaim } from '../../src/assignment/assignment.queries.js';
import type { Db } from '../../src/db/database.js';
import { useTestDatabase } from '../helpers/database.js';
import { completeTasks } from '../../src/tasks/task.queries.js';
import { insertTasks } from '../helpers/tasks.js';

/**
 * A backlog arrives faster than statistics follow it: the table was last analysed while nearly
 * every task in it had finished (the steady state of a queue that keeps up), then thousands came
 * in one burst, and autoanalyze has not run yet (it may take a minute; the drain is over sooner).
 * The planner then believes almost nothing is pending. The batch's statements must still read
 * only the rows they claim and write.
 */
const database = useTestDatabase();
const BACKLOG = 20_000;
const BATCH = 500;

type Tx = Parameters<Parameters<ReturnType<Db['transaction']>['execute']>[0]>[0];

/** Heap rows this transaction has read from `table` so far, by index and by sequential scan. */
async function rowsRead(tx: Tx, table = 'dispatch_tasks'): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT (coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0))::int AS n FROM pg_stat_xact_user_tables WHERE relname = ${table}`.execute(tx);
  return rows[0]?.n ?? 0;
}

/**
 * `agent` serving `scope`, a table last analysed while its only tasks had finished, then a burst
 * of BACKLOG tasks of `scope` in `status` (held by the agent when active). Returns their ids.
 */
async function burstAfterQuietAnalyse(db: Db, agent: string, scope: string, status: 'pending' | 'assigned'): Promise<string[]> {
  await sql`ALTER TABLE dispatch_tasks SET (autovacuum_enabled = off)`.execute(db);
  await sql`INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent) VALUES (${agent}, ${[scope]}, 'ready', ${BACKLOG})`.execute(db);
  await insertTasks(db, 200, { scope, status: 'completed' });
  await sql`ANALYZE dispatch_tasks`.execute(db);
  return await insertTasks(db, BACKLOG, { scope, status, assignee: status === 'pending' ? null : agent });
}

/**
 * A table as a fresh install has it (the tests before left thousands of tasks in it), and 300
 * ready agents serving `scope`, named `<scope>-agent-NNN`. Returns their names in name order.
 */
async function emptyTableAnd300Agents(db: Db, scope: string, maxConcurrent: number): Promise<string[]> {
  await sql`TRUNCATE dispatch_tasks CASCADE`.execute(db);
  const agents = Array.from({ length: 300 }, (_, i) => `${scope}-agent-${String(i).padStart(3, '0')}`);
  await sql`INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent)
            SELECT name, ${[scope]}::text[], 'ready', ${maxConcurrent} FROM unnest(${agents}::text[]) AS name`.execute(db);
  return agents;
}

/** What `fn` returns, and how many rows of `table` it read. */
async function counted<T>(tx: Tx, fn: () => Promise<T>, table = 'dispatch_tasks'): Promise<{ result: T; read: number }> {
  const before = await rowsRead(tx, table);
  const result = await fn();
  return { result, read: (await rowsRead(tx, table)) - before };
}

describe('assignment under statistics from before a backlog', () => {
  it('claims and writes a batch reading about as many task rows as it places', async () => {
    const db = database().handle.db;
    await burstAfterQuietAnalyse(db, 'plan-agent', 'backlog', 'pending');

    await db.transaction().execute(async (tx) => {
      // The batch's first statement: the agents locked and the claim (migration 0030).
      const { result: first, read: claimRead } = await counted(tx, () => lockAgentsAndClaim(tx, 3, BATCH));
      expect(first.free.map((a) => a.name)).toEqual(['plan-agent']);
      const claimed = first.claim.tasks;
      expect(claimed).toHaveLength(BATCH);
      const decisions = claimed.map((t) => ({ taskId: t.id, agent: 'plan-agent', placement: null }));
      const { result: applied, read: writeRead } = await counted(tx, () => applyAssignments(tx, decisions));
      expect(applied).toHaveLength(BATCH);

      // The claim looks at its candidates (the batch and a small allowance) twice: walking the
      // scope's index, then locking them by primary key. The write reads each task twice: found
      // by key, and again by its event's foreign-key check. (Both read the whole backlog when
      // their status test matched the partial indexes on pending tasks.)
      expect(claimRead, 'task rows the claim read').toBeLessThanOrEqual(3 * BATCH);
      expect(writeRead, 'task rows the write read').toBeLessThanOrEqual(2 * BATCH);
    });
  });

  it('completes tasks reading only theirs while thousands more are active', async () => {
    const db = database().handle.db;
    const ids = await burstAfterQuietAnalyse(db, 'busy-agent', 'busy', 'assigned');

    await db.transaction().execute(async (tx) => {
      const done = ids.slice(0, 100);
      const calls = done.map((taskId) => ({ call: { taskId, agent: 'busy-agent', attempt: 1 }, resultJson: '{}' }));
      const { result: completed, read } = await counted(tx, () => completeTasks(tx, calls));
      expect(completed.filter(Boolean)).toHaveLength(done.length);
      expect(read, 'task rows the completion read').toBeLessThanOrEqual(2 * done.length);
    });
  });

  it('claims, writes and completes by key in a session that planned them while the tables were nearly empty', async () => {
    const db = database().handle.db;
    const agents = await emptyTableAnd300Agents(db, 'grown', 100);
    const [first] = await insertTasks(db, 1, { scope: 'grown' });
    // Analysed so: a fresh install's table, which autovacuum analysed while it held a task or two.
    await sql`ANALYZE dispatch_tasks`.execute(db);

    // One session throughout, as an assigner's: the plans of the claim (migration 0029), the write
    // (migration 0026) and the completion (migration 0029) are made by their first calls, while
    // the table holds one task, and kept.
    await db.connection().execute(async (session) => {
      // The pool's connection may have planned them already, in an earlier test, on a large table.
      await sql`DISCARD PLANS`.execute(session);
      const decide = (ids: string[]) => ids.map((taskId, i) => ({ taskId, agent: agents[i % agents.length]!, placement: null }));
      const completing = (ids: string[]) => ids.map((taskId, i) => ({ call: { taskId, agent: agents[i % agents.length]!, attempt: 1 }, resultJson: '{}' }));
      await session.transaction().execute(async (tx) => {
        expect(await claimPendingTasks(tx, ['grown'], 10)).toHaveLength(1);
        await applyAssignments(tx, decide([first!]));
      });
      expect((await session.transaction().execute((tx) => completeTasks(tx, completing([first!])))).filter(Boolean)).toHaveLength(1);

      const grown = await insertTasks(db, BACKLOG, { scope: 'grown' });
      const batch = await session.transaction().execute(async (tx) => {
        const { result: claimed, read: claimRows } = await counted(tx, () => claimPendingTasks(tx, ['grown'], 10));
        expect(claimed).toHaveLength(10);
        // The candidates (the batch and 64 more) walked on the scope's index, then locked by key.
        expect(claimRows, 'task rows the claim read').toBeLessThanOrEqual(2 * (10 + 64));
        const batch = claimed.map((t) => t.id);
        const { result: applied, read: taskRows } = await counted(tx, () => applyAssignments(tx, decide(batch)));
        expect(applied).toHaveLength(batch.length);
        // Each task found by key and again by its event's foreign-key check; each winner's row by
        // key for its last assignment and again for its active-task counter.
        expect(taskRows, 'task rows the write read').toBeLessThanOrEqual(2 * batch.length);
        const more = grown.filter((id) => !batch.includes(id)).slice(0, 10);
        const { read: agentRows } = await counted(tx, () => applyAssignments(tx, decide(more)), 'dispatch_agents');
        expect(agentRows, 'agent rows the write read').toBeLessThanOrEqual(2 * batch.length);
        return [batch, more] as const;
      });
      // Their completion frees their agents while work waits: each task and each freed agent is looked up by key.
      await session.transaction().execute(async (tx) => {
        const calls = completing(batch[0]);
        const { result: completed, read: taskRows } = await counted(tx, () => completeTasks(tx, calls));
        expect(completed.filter(Boolean)).toHaveLength(calls.length);
        // Each task by key and again by its event's foreign-key check, and one pending task: work
        // waiting for the agents it frees, so the assigners are woken.
        expect(taskRows, 'task rows the completion read').toBeLessThanOrEqual(2 * calls.length + 1);
        const { result: more, read: agentRows } = await counted(tx, () => completeTasks(tx, completing(batch[1])), 'dispatch_agents');
        expect(more.filter(Boolean)).toHaveLength(calls.length);
        expect(agentRows, 'agent rows the completion read').toBeLessThanOrEqual(2 * calls.length);
      });
    });
  });

  it('locks and reads no agent when no task is pending, however many have finished', async () => {
    const db = database().handle.db;
    const agents = await emptyTableAnd300Agents(db, 'quiet', 10);
    await insertTasks(db, 3, { scope: 'quiet', status: 'completed' });
    await sql`ANALYZE dispatch_tasks`.execute(db);

    // One session throughout, as a drain's: the question "anything pending?" is planned while the
    // table holds three finished tasks, and kept.
    await db.connection().execute(async (session) => {
      const firstStatement = (table: string) =>
        session.transaction().execute((tx) => counted(tx, () => lockAgentsAndClaim(tx, 3, 10, { takeActive: true }), table));
      expect((await firstStatement('dispatch_agents')).result.free).toEqual([]);

      await insertTasks(db, BACKLOG, { scope: 'quiet', status: 'completed' });
      const quiet = await firstStatement('dispatch_agents');
      expect(quiet.result).toMatchObject({ active: true, free: [], others: [] });
      expect(quiet.read, 'agent rows read with nothing pending').toBe(0);
      expect((await firstStatement('dispatch_tasks')).read, 'task rows read to find nothing pending').toBeLessThanOrEqual(10);

      await insertTasks(db, 1, { scope: 'quiet' });
      const busy = await firstStatement('dispatch_agents');
      expect(busy.result.free.map((a) => a.name).filter((name) => name.startsWith('quiet-agent-'))).toEqual(agents);
    });
  });
});

