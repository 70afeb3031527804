import { Kysely, PostgresDialect, sql, type PostgresPool, type Transaction } from 'kysely';
import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { Assigner } from '../../src/assignment/assigner.js';
import { claimStatement, lockAgentsAndClaim, type ClaimedTask } from '../../src/assignment/assignment.queries.js';
import { rowsHeldBeside } from '../../src/assignment/side-by-side.js';
import { openDatabase, type DatabaseHandle, type Db } from '../../src/db/database.js';
import type { DB } from '../../src/db/generated/database.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { completeTask } from '../../src/tasks/task.queries.js';
import { auditAssignments } from '../helpers/assignment-audit.js';
import { useTestDatabase } from '../helpers/database.js';
import { insertTasks } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A backlog drained by batches side by side (assignment.parallel_batches): each batch locks its
 * own share of the free agents, and the claim walks past the rows the other batches hold.
 */
const database = useTestDatabase();
const opened: DatabaseHandle[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((h) => h.close()));
});

function open(name: string, size = 4): DatabaseHandle {
  const handle = openDatabase(database().url, size, name);
  opened.push(handle);
  return handle;
}

/**
 * The claim of 100 tasks of scope `head` as a batch's first statement makes it (outside the
 * controlled scopes), walking past `heldAhead` rows that batches beside it may hold.
 */
async function claimHead(tx: Transaction<DB>, heldAhead: number): Promise<ClaimedTask[]> {
  const { rows } = await claimStatement(['head'], 100, heldAhead, true).execute(tx);
  return rows.filter((row): row is ClaimedTask & typeof row => row.id != null);
}

/**
 * Connections that count the assigner's transactions open at one moment, the drain's own
 * session and the side-by-side batches' connections alike (both taken from `pool`).
 */
function countingConnections(handle: DatabaseHandle): { db: Db; pool: pg.Pool; mostAtOnce: () => number } {
  let open = 0;
  let most = 0;
  const wrap = (client: pg.PoolClient) =>
    ({
      query: async (text: string, values?: unknown[]) => {
        // A batch's BEGIN travels with its first statement, its COMMIT often with its last.
        const statement = typeof text === 'string' ? text.trim().toLowerCase() : '';
        if (statement.startsWith('begin')) most = Math.max(most, ++open);
        try {
          return await client.query(text, values);
        } finally {
          if (statement.endsWith('commit') || statement === 'rollback') open -= 1;
        }
      },
      release: (error?: Error | boolean) => client.release(error),
    }) as unknown as pg.PoolClient;
  const pool = { connect: async () => wrap(await handle.pool.connect()) } as unknown as pg.Pool;
  const kyselyPool: PostgresPool = { connect: async () => wrap(await handle.pool.connect()) as never, end: async () => undefined };
  return { db: new Kysely<DB>({ dialect: new PostgresDialect({ pool: kyselyPool }) }), pool, mostAtOnce: () => most };
}

describe('batches side by side on a backlog', () => {
  it('drains a backlog two batches at a time without a double assignment or a limit breach, completions racing', async () => {
    const db = database().handle.db;
    const agents = Array.from({ length: 6 }, (_, i) => `side-${i}`);
    await sql`
      INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent)
      SELECT name, '{side}', 'ready', 15 FROM unnest(${agents}::text[]) AS name`.execute(db);
    const tasks = await insertTasks(db, 600, { scope: 'side' });

    const handle = open('side-by-side-assigner', 4);
    // Open the pool's connections first, as a running replica's are: a batch beside the drain's
    // then starts at once, not after a connection is made (by which time the first may be done).
    const warm = await Promise.all(Array.from({ length: 4 }, () => handle.pool.connect()));
    for (const client of warm) client.release();
    const counted = countingConnections(handle);
    const assigner = new Assigner(
      counted.db,
      { api: counted.pool, direct: counted.pool },
      { batchSize: 20, parallelBatches: 2, defaultMaxConcurrent: 3 },
      createLogger({ level: 'silent' }),
      createMetrics(),
    );

    // The agents complete what they hold as fast as they can, freeing slots the batches race for.
    const worker = open('side-by-side-agents', 4);
    let stop = false;
    const completing = (async () => {
      while (!stop) {
        const { rows } = await sql<{ id: string; assignee: string; attempt: number }>`
          SELECT id, assignee, attempt FROM dispatch_tasks WHERE scope = 'side' AND status = 'assigned' LIMIT 40`.execute(worker.db);
        await Promise.all(rows.map((t) => completeTask(worker.db, { taskId: t.id, agent: t.assignee, attempt: t.attempt }, null)));
        // Every completion asks for a pass, as the replica's wake-up would.
        if (rows.length > 0) assigner.drain(() => false).catch(() => undefined);
        else await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      await assigner.drain(() => false);
      await waitFor(
        async () => {
          const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE scope = 'side' AND status = 'completed'`.execute(db);
          return rows[0]!.n === tasks.length;
        },
        { what: 'every task completed', timeoutMs: 60_000 },
      );
    } finally {
      stop = true;
      await completing;
      await assigner.whenIdle();
    }

    expect(counted.mostAtOnce()).toBeGreaterThanOrEqual(2);
    const audit = await auditAssignments(db, 3);
    expect(audit.doubleAssignments).toEqual([]);
    expect(audit.limitBreaches).toEqual([]);
    expect(audit.attemptMismatches).toEqual([]);
    expect(audit.agentsAtLimit).toBeGreaterThan(0);
    const { rows } = await sql<{ assigned: number }>`
      SELECT count(*)::int AS assigned FROM dispatch_task_events e JOIN dispatch_tasks t ON t.id = e.task_id
       WHERE t.scope = 'side' AND e.event = 'assigned'`.execute(db);
    expect(rows[0]!.assigned).toBe(tasks.length);
  });

  it('gives each of two batches beside each other its own share of the free agents, together all of them', async () => {
    const db = database().handle.db;
    await sql`
      INSERT INTO dispatch_agents (name, capabilities, status, drained) VALUES
        ('share-a', '{share}', 'ready', false), ('share-b', '{share}', 'ready', false), ('share-c', '{share}', 'ready', true),
        ('share-d', '{share}', 'busy', false), ('share-e', '{share}', 'sleeping', false)`.execute(db);
    await sql`UPDATE dispatch_agents SET drained = true WHERE name NOT LIKE 'share-%'`.execute(db);
    // A backlog, as side-by-side batches have (with nothing pending a batch locks no agent).
    await insertTasks(db, 10, { scope: 'share' });
    const first = open('share-first', 1);
    const second = open('share-second', 1);
    const shares = await first.db.transaction().execute(async (tx1) => {
      const one = await lockAgentsAndClaim(tx1, 3, 5, { share: { index: 0, of: 2 } });
      // The first holds its share: the second would wait here if their shares overlapped.
      const two = await second.db.transaction().execute(async (tx2) => {
        await sql`SET LOCAL lock_timeout = '2s'`.execute(tx2);
        return await lockAgentsAndClaim(tx2, 3, 5, { share: { index: 1, of: 2 } });
      });
      return [one, two].map((s) => s.free.map((a) => a.name).filter((name) => name.startsWith('share-')));
    });
    // share-c is drained: the free ones are a, b, d, e, numbered in name order.
    expect(shares).toEqual([
      ['share-a', 'share-d'],
      ['share-b', 'share-e'],
    ]);
    await sql`UPDATE dispatch_agents SET drained = false WHERE name NOT LIKE 'share-%'`.execute(db);
  });

  it('claims a whole batch beside another batch holding the head of the queue', async () => {
    const db = database().handle.db;
    await insertTasks(db, 300, { scope: 'head' });
    const first = open('head-first', 1);
    const second = open('head-second', 1);
    const claimed = await first.db.transaction().execute(async (tx1) => {
      const one = await claimHead(tx1, 0);
      const two = await second.db.transaction().execute(async (tx2) => (await claimHead(tx2, 0)).length);
      const three = await second.db.transaction().execute(async (tx2) => claimHead(tx2, 100));
      return { one, two, three };
    });
    expect(claimed.one).toHaveLength(100);
    // Without the allowance for the rows held beside it, a claim finds only the usual allowance past them.
    expect(claimed.two).toBeLessThan(100);
    expect(claimed.three).toHaveLength(100);
    const overlap = claimed.three.filter((t) => claimed.one.some((o) => o.id === t.id));
    expect(overlap).toEqual([]);
  });

  it('claims a whole batch when the batch beside it commits and claims again while its claim runs', async () => {
    const db = database().handle.db;
    await insertTasks(db, 400, { scope: 'relay' });
    // A limited scope among the claim's scopes: its row, held here, stops the claim after its
    // snapshot is taken and before it locks a task, the instant a descheduled backend would.
    await sql`INSERT INTO dispatch_scopes (scope, max_running, changed_by) VALUES ('relay-gated', 10, 'test')`.execute(db);
    const handle = open('relay', 3);
    const [gate, beside, claiming] = await Promise.all([handle.pool.connect(), handle.pool.connect(), handle.pool.connect()]);
    const claimOn = async (client: pg.PoolClient, scopes: string[], heldAhead: number) => {
      const query = claimStatement(scopes, 100, heldAhead, true).compile(db);
      const { rows } = await client.query<{ id: string | null }>(query.sql, [...query.parameters]);
      return rows.flatMap((row) => (row.id === null ? [] : [row.id]));
    };
    try {
      await gate.query("BEGIN; SELECT 1 FROM dispatch_scopes WHERE scope = 'relay-gated' FOR UPDATE");
      // The batch beside holds the head of the queue.
      await beside.query('BEGIN');
      const first = await claimOn(beside, ['relay'], 0);
      await claiming.query('BEGIN');
      const second = claimOn(claiming, ['relay', 'relay-gated'], rowsHeldBeside({ index: 1, of: 2 }, 100));
      second.catch(() => {});
      await waitFor(async () => (await waitersOnLock(db)) === 1, { what: 'the claim waiting at the limited scope' });
      // The batch beside commits what it held (here: ends those tasks) and claims the next hundred.
      await beside.query("UPDATE dispatch_tasks SET status = 'cancelled', completed_at = now() WHERE id = ANY($1::uuid[])", [first]);
      await beside.query('COMMIT');
      await beside.query('BEGIN');
      const next = await claimOn(beside, ['relay'], 0);
      await gate.query('COMMIT');
      const claimed = await second;
      expect(first).toHaveLength(100);
      expect(next).toHaveLength(100);
      // With one batch's allowance for the lane beside, this claim found 64: only the usual allowance.
      expect(claimed).toHaveLength(100);
      expect(claimed.filter((id) => first.includes(id) || next.includes(id))).toEqual([]);
    } finally {
      for (const client of [gate, beside, claiming]) {
        await client.query('ROLLBACK');
        client.release();
      }
    }
  });
});

async function waitersOnLock(db: Db): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db);
  return rows[0]!.n;
}
