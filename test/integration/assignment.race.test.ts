import type pg from 'pg';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { Assigner } from '../../src/assignment/assigner.js';
import { ADVISORY_LOCK } from '../../src/db/contract.js';
import { openDatabase, type DatabaseHandle, type Db } from '../../src/db/database.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { changeScopeControls } from '../../src/scopes/scope.queries.js';
import { completeTask } from '../../src/tasks/task.queries.js';
import { auditAssignments, auditScopeLimits } from '../helpers/assignment-audit.js';
import { useTestDatabase } from '../helpers/database.js';
import { assignDirectly, insertTasks } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Two assigners (two replicas) placing at the same instant, with the interleaving forced step by
 * step. The broker's statements are real; the only thing added is a pause before one chosen
 * statement of each assigner, so the order of events is the one under test every time.
 */
const database = useTestDatabase();
const opened: DatabaseHandle[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((h) => h.close()));
});

/** A pool of its own, closed after the test: each racing assigner has its own connections. */
function open(name: string): DatabaseHandle {
  const handle = openDatabase(database().url, 2, name);
  opened.push(handle);
  return handle;
}

/** Holds every statement matching `pattern` until released; says when one has arrived. */
class Pause {
  reached = false;
  private release!: () => void;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));
  constructor(readonly pattern: RegExp) {}
  async pass(text: string): Promise<void> {
    if (!this.pattern.test(text)) return;
    this.reached = true;
    await this.released;
  }
  open(): void {
    this.release();
  }
}

/** A real pool whose connections' statements wait at their `pauses`. */
function pausedPool(handle: DatabaseHandle, ...pauses: Pause[]): pg.Pool {
  return {
    async connect() {
      const client = await handle.pool.connect();
      return {
        query: async (text: string, values?: unknown[]) => {
          for (const pause of pauses) await pause.pass(text);
          return await client.query(text, values);
        },
        release: (error?: Error | boolean) => client.release(error),
      };
    },
  } as unknown as pg.Pool;
}

/** An assigner whose batches (assignBatch, on the API pool) wait at `pauses`. */
function assigner(handle: DatabaseHandle, ...pauses: Pause[]): Assigner {
  const pools = { api: pausedPool(handle, ...pauses), direct: handle.pool };
  return new Assigner(handle.db, pools, { batchSize: 1, defaultMaxConcurrent: 3 }, createLogger({ level: 'silent' }), createMetrics());
}

async function waitersOnLocks(db: Db): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db);
  return rows[0]!.n;
}

describe('assignment under concurrent batches', () => {
  it('never places a task on an agent the batch did not lock (no limit breach)', async () => {
    const db = database().handle.db;
    // race-b: the agent whose limit (1) is at stake, free; race-c: busy, so it scores below race-b
    // and wins only when race-b cannot.
    await sql`
      INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent) VALUES
        ('race-b', '{build}', 'ready', 1), ('race-c', '{build}', 'busy', NULL)`.execute(db);
    await insertTasks(db, 2, { scope: 'build' });

    // B's transaction begins (its now() is fixed) and waits before locking agents.
    const bHandle = open('race-b-assigner');
    const bLock = new Pause(/dispatch_lock_agents_and_claim\(/);
    const bWrite = new Pause(/dispatch_apply_assignments\(/);
    const b = assigner(bHandle, bLock, bWrite).assignBatch();
    await waitFor(() => bLock.reached, { what: 'B about to lock agents' });
    // race-c's cooldown ends after B began and before A begins: free for A, not for B.
    await sql`UPDATE dispatch_agents SET avoid_until = clock_timestamp() WHERE name = 'race-c'`.execute(db);
    // B locks race-b and stops before writing.
    bLock.open();
    await waitFor(() => bWrite.reached, { what: 'B about to write' });

    // A's first statement sees race-b free (B has not committed) and waits for B's lock on it.
    const aHandle = open('race-a-assigner');
    const a = assigner(aHandle).assignBatch();
    await waitFor(async () => (await waitersOnLocks(db)) === 1, { what: 'A waiting for race-b' });

    // B fills race-b and commits. A's lock finds race-b full and passes it over, but A's read of
    // the agents it did not lock is from before the wait: race-b looks free there. Placing on it
    // would be a second task on an agent limited to one.
    bWrite.open();
    const results = await Promise.all([a, b]);
    expect(results.map((r) => r.assigned)).toEqual([1, 1]);

    const audit = await auditAssignments(db, 3);
    expect(audit.limitBreaches).toEqual([]);
    const { rows } = await sql<{ name: string; active_tasks: number }>`
      SELECT name, active_tasks FROM dispatch_agent_load WHERE name IN ('race-b', 'race-c') ORDER BY name`.execute(db);
    expect(rows).toEqual([
      { name: 'race-b', active_tasks: 1 },
      { name: 'race-c', active_tasks: 1 },
    ]);
  });

  it('never lets two batches fill one scope past max_running (the scope row is locked before its usage is read)', async () => {
    const db = database().handle.db;
    // Earlier tests' agents are free too: both batches would lock them, and that alone would
    // serialise the batches and hide a missing scope lock. Only this test's agents may take work.
    await sql`UPDATE dispatch_agents SET drained = true`.execute(db);
    // Two agents that the two batches lock apart (as above), both serving a scope limited to 1.
    await sql`
      INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent) VALUES
        ('scope-b', '{capped,other-work}', 'ready', 1), ('scope-c', '{capped}', 'ready', NULL)`.execute(db);
    await sql`INSERT INTO dispatch_scopes (scope, max_running, changed_by) VALUES ('capped', 1, 'test')`.execute(db);
    await insertTasks(db, 2, { scope: 'capped' });
    const [held] = await insertTasks(db, 1, { scope: 'other-work' });
    await assignDirectly(db, held!, 'scope-b');

    const bHandle = open('scope-b-assigner');
    const bLock = new Pause(/dispatch_lock_agents_and_claim\(/);
    const b = assigner(bHandle, bLock).assignBatch();
    await waitFor(() => bLock.reached, { what: 'B about to lock agents' });
    await sql`UPDATE dispatch_agents SET avoid_until = clock_timestamp() WHERE name = 'scope-c'`.execute(db);

    // A locks scope-c, reads the scope's usage (0 of 1) and stops before writing its assignment.
    const aHandle = open('scope-a-assigner');
    const aWrite = new Pause(/dispatch_apply_assignments\(/);
    const a = assigner(aHandle, aWrite).assignBatch();
    await waitFor(() => aWrite.reached, { what: 'A about to write' });

    // scope-b frees up: B locks it and reaches the scope. It must wait for A's row lock and then
    // see A's assignment; a B that read the usage without the lock would start a second task.
    expect(await completeTask(db, { taskId: held!, agent: 'scope-b', attempt: 1 }, { ok: true })).toBeDefined();
    let bDone = false;
    void b.then(() => (bDone = true));
    bLock.open();
    await waitFor(async () => bDone || (await waitersOnLocks(db)) === 1, { what: 'B at the scope' });
    aWrite.open();
    const results = await Promise.all([a, b]);
    expect(results.map((r) => r.assigned)).toEqual([1, 0]);

    const audit = await auditScopeLimits(db);
    expect(audit.runningBreaches).toEqual([]);
    const { rows } = await sql<{ status: string; n: number }>`
      SELECT status, count(*)::int AS n FROM dispatch_tasks WHERE scope = 'capped' GROUP BY status ORDER BY status`.execute(db);
    expect(rows).toEqual([
      { status: 'assigned', n: 1 },
      { status: 'pending', n: 1 },
    ]);
  });

  it('never commits an assignment in a scope after its pause has answered (a pause waits for the batches in flight)', async () => {
    const db = database().handle.db;
    await sql`INSERT INTO dispatch_agents (name, capabilities, status) VALUES ('gate-agent', '{gated}', 'ready')`.execute(db);
    await insertTasks(db, 1, { scope: 'gated' });

    // The batch has locked its agents (and, with them, taken the gate) and claimed the task, and
    // stops before its write.
    const handle = open('gate-assigner');
    const write = new Pause(/dispatch_apply_assignments\(/);
    const batch = assigner(handle, write).assignBatch();
    await waitFor(() => write.reached, { what: 'the batch about to write' });

    let answered = false;
    const pause = changeScopeControls(db, 'gated', { paused: true }, 'test').then(() => (answered = true));
    await waitFor(async () => (await waitersOnLocks(db)) === 1, { what: 'the pause waiting for the batch' });
    expect(answered).toBe(false);
    write.open();
    // (Without the gate the pause would have answered at once, and this assignment, in a scope
    // already reported paused, would commit after it.)
    expect((await batch).assigned).toBe(1);
    await pause;

    // The pause answered only after the batch, which had missed it, committed its assignment.
    expect((await sql<{ paused: boolean }>`SELECT paused FROM dispatch_scopes WHERE scope = 'gated'`.execute(db)).rows).toEqual([{ paused: true }]);
  });

  it('sees a pause that committed while the batch waited for the gate (its claim reads the controls after the wait)', async () => {
    const db = database().handle.db;
    await sql`INSERT INTO dispatch_agents (name, capabilities, status) VALUES ('wait-agent', '{waited}', 'ready')`.execute(db);
    await insertTasks(db, 1, { scope: 'waited' });

    // A pause holds the gate, its change written but not committed, when the batch starts. The
    // scope had no controls: its row is new, so no row lock of the batch could wait for it and
    // read it as it is now; only a snapshot taken after the wait sees it.
    const pausing = open('gate-pause');
    const conn = await pausing.pool.connect();
    try {
      await conn.query('BEGIN');
      await conn.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK.scopeControls]);
      await conn.query(`INSERT INTO dispatch_scopes (scope, paused, changed_by) VALUES ('waited', true, 'test')`);
      const batch = assigner(open('gate-waiter')).assignBatch();
      await waitFor(async () => (await waitersOnLocks(db)) === 1, { what: 'the batch waiting for the gate' });
      await conn.query('COMMIT');
      // Read with the snapshot of the statement that waited, the scope would still look unpaused.
      expect(await batch).toEqual({ claimed: 0, assigned: 0 });
    } finally {
      conn.release();
    }
    const { rows } = await sql<{ status: string }>`SELECT status FROM dispatch_tasks WHERE scope = 'waited'`.execute(db);
    expect(rows).toEqual([{ status: 'pending' }]);
  });
});
