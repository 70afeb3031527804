import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../db/migrations.js';
import { registerAgents } from '../../src/agents/agent.queries.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { newId } from '../../src/db/ids.js';
import { isMigrated, migrateToLatest } from '../../src/db/migrate.js';
import { createLogger, workerLogger } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * The schema from nothing: migrations on an empty database, what they leave behind (tables,
 * views, comments, the rules the database enforces by itself), and replicas migrating at once.
 */

const quiet = workerLogger(createLogger({ level: 'silent' }));
const ALL_MIGRATIONS = Object.keys(migrations);

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase({ empty: true });
  db = database.handle.db;
});
afterAll(async () => {
  await database?.drop();
});

describe('from an empty database', () => {
  it('applies every migration in order, then has nothing left to do', async () => {
    expect(await isMigrated(db)).toBe(false);
    const first = await migrateToLatest(db, database.handle.pool, quiet);
    expect(first.applied).toEqual(ALL_MIGRATIONS);
    expect(await isMigrated(db)).toBe(true);
    const again = await migrateToLatest(db, database.handle.pool, quiet);
    expect(again.applied).toEqual([]);
    const { rows } = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(db);
    expect(rows.map((r) => r.name)).toEqual(ALL_MIGRATIONS);
  });

  it('creates the tables, the views a DBA reads, and graphile-worker’s schema', async () => {
    const { rows } = await sql<{ relname: string; relkind: string }>`
      SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')`.execute(db);
    const tables = rows.filter((r) => r.relkind === 'r').map((r) => r.relname);
    const views = rows.filter((r) => r.relkind === 'v').map((r) => r.relname);
    expect(tables).toEqual(expect.arrayContaining(['dispatch_tasks', 'dispatch_task_events', 'dispatch_agents']));
    expect(views).toEqual(expect.arrayContaining(['dispatch_queue_depth', 'dispatch_overdue_tasks', 'dispatch_agent_load']));
    const worker = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'graphile_worker'`.execute(db);
    expect(worker.rows[0]!.n).toBe(1);
  });

  it('comments every dispatch table, view and table column', async () => {
    const relations = await sql<{ relname: string }>`
      SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') AND c.relname LIKE 'dispatch\_%'
         AND obj_description(c.oid, 'pg_class') IS NULL`.execute(db);
    expect(relations.rows.map((r) => r.relname)).toEqual([]);
    const columns = await sql<{ column: string }>`
      SELECT c.relname || '.' || a.attname AS column
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'dispatch\_%'
         AND a.attnum > 0 AND NOT a.attisdropped AND col_description(c.oid, a.attnum) IS NULL
       ORDER BY 1`.execute(db);
    expect(columns.rows.map((r) => r.column)).toEqual([]);
    // The check above means something only if the three core tables have their columns.
    const counted = await sql<{ relname: string; n: number }>`
      SELECT c.relname, count(*)::int AS n FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
       WHERE c.relname IN ('dispatch_tasks', 'dispatch_task_events', 'dispatch_agents') AND a.attnum > 0 AND NOT a.attisdropped
       GROUP BY c.relname`.execute(db);
    const byTable = Object.fromEntries(counted.rows.map((r) => [r.relname, r.n]));
    expect(byTable.dispatch_tasks).toBeGreaterThanOrEqual(20);
    expect(byTable.dispatch_task_events).toBeGreaterThanOrEqual(6);
    expect(byTable.dispatch_agents).toBeGreaterThanOrEqual(5);
  });
});

describe('rules the database enforces', () => {
  beforeAll(async () => {
    await migrateToLatest(db, database.handle.pool, quiet);
  });

  /** Inserts one task with `columns` overriding a valid pending row. */
  async function insertTask(columns: Record<string, unknown>): Promise<void> {
    const row: Record<string, unknown> = { requester: 'r', title: 't', scope: 'x', ...columns };
    const names = Object.keys(row);
    await sql`INSERT INTO dispatch_tasks (${sql.join(names.map((n) => sql.ref(n)))})
              VALUES (${sql.join(names.map((n) => row[n]))})`.execute(db);
  }

  it('accepts a valid row with the v1 defaults', async () => {
    const { rows } = await sql<{ priority: number; status: string; timeout_ms: number; max_retries: number; retry_count: number }>`
      INSERT INTO dispatch_tasks (requester, title, scope) VALUES ('r', 't', 'x')
      RETURNING priority, status, timeout_ms, max_retries, retry_count`.execute(db);
    expect(rows[0]).toEqual({ priority: 3, status: 'pending', timeout_ms: 300_000, max_retries: 1, retry_count: 0 });
  });

  it.each([
    ['priority 9', { priority: 9 }, 'dispatch_tasks_priority_check'],
    ['priority 0', { priority: 0 }, 'dispatch_tasks_priority_check'],
    ['a negative max_retries', { max_retries: -1 }, 'dispatch_tasks_max_retries_check'],
    ['a negative retry_count', { retry_count: -1 }, 'dispatch_tasks_retry_count_check'],
    ['more retries spent than allowed', { max_retries: 1, retry_count: 2 }, 'dispatch_tasks_retries_within_budget'],
    ['timeout 0', { timeout_ms: 0 }, 'dispatch_tasks_timeout_ms_check'],
    ['a negative heartbeat timeout', { heartbeat_timeout_ms: -5 }, 'dispatch_tasks_heartbeat_timeout_ms_check'],
    ['an unknown status', { status: 'done' }, 'dispatch_tasks_status_check'],
    ['an upper-case scope', { scope: 'Code' }, 'dispatch_tasks_scope_check'],
    ['an empty title', { title: '' }, 'dispatch_tasks_title_check'],
    ['an assigned task without assignee', { status: 'assigned', assigned_at: new Date() }, 'dispatch_tasks_active_has_assignee'],
    ['a completed task without completed_at', { status: 'completed' }, 'dispatch_tasks_terminal_is_stamped'],
  ])('refuses a task with %s', async (_case, columns, constraint) => {
    await expect(insertTask(columns)).rejects.toMatchObject({ code: '23514', constraint });
  });

  it('refuses the same idempotency key twice for one requester, not for two', async () => {
    await insertTask({ requester: 'idem-a', idempotency_key: 'k1' });
    await expect(insertTask({ requester: 'idem-a', idempotency_key: 'k1' })).rejects.toMatchObject({ code: '23505' });
    await expect(insertTask({ requester: 'idem-b', idempotency_key: 'k1' })).resolves.toBeUndefined();
  });

  it('refuses an unknown parent and an event for an unknown task', async () => {
    await expect(insertTask({ parent_id: '00000000-0000-4000-8000-000000000000' })).rejects.toMatchObject({ code: '23503' });
    await expect(
      sql`INSERT INTO dispatch_task_events (task_id, event) VALUES ('00000000-0000-4000-8000-000000000000', 'created')`.execute(db),
    ).rejects.toMatchObject({ code: '23503' });
  });

  it('refuses an agent with an unknown status or a zero limit', async () => {
    await expect(sql`INSERT INTO dispatch_agents (name, status) VALUES ('bad-status', 'asleep')`.execute(db)).rejects.toMatchObject({ code: '23514' });
    await expect(sql`INSERT INTO dispatch_agents (name, max_concurrent) VALUES ('bad-limit', 0)`.execute(db)).rejects.toMatchObject({ code: '23514' });
  });

  it('keeps updated_at current on every change', async () => {
    const { rows } = await sql<{ id: string }>`
      INSERT INTO dispatch_tasks (requester, title, scope, created_at, updated_at)
      VALUES ('r', 't', 'x', '2001-01-01', '2001-01-01') RETURNING id`.execute(db);
    const id = rows[0]!.id;
    await sql`UPDATE dispatch_tasks SET title = 'renamed' WHERE id = ${id}`.execute(db);
    const after = await sql<{ updated_at: Date }>`SELECT updated_at FROM dispatch_tasks WHERE id = ${id}`.execute(db);
    expect(after.rows[0]!.updated_at.getUTCFullYear()).toBeGreaterThan(2001);
  });

  it('gives tasks and events time-ordered ids (UUID version 7), in the same order as the API’s own', async () => {
    const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const insertTask = async () =>
      (await sql<{ id: string }>`INSERT INTO dispatch_tasks (requester, title, scope) VALUES ('r', 't', 'ids') RETURNING id`.execute(db)).rows[0]!.id;
    const pause = () => new Promise((resolve) => setTimeout(resolve, 3));
    const first = await insertTask();
    await pause();
    const fromApi = newId();
    await pause();
    const last = await insertTask();
    for (const id of [first, fromApi, last]) expect(id).toMatch(V7);
    expect([last, fromApi, first].sort()).toEqual([first, fromApi, last]);
    const event = await sql<{ event_id: string }>`
      INSERT INTO dispatch_task_events (task_id, event) VALUES (${last}, 'created') RETURNING event_id`.execute(db);
    expect(event.rows[0]!.event_id).toMatch(V7);
    // Random bits after the time: many ids in one millisecond are still all different.
    const many = await sql<{ n: number }>`SELECT count(DISTINCT dispatch_uuid_v7())::int AS n FROM generate_series(1, 10000)`.execute(db);
    expect(many.rows[0]!.n).toBe(10_000);
  });

  it('deletes a task’s events with the task', async () => {
    const { rows } = await sql<{ id: string }>`INSERT INTO dispatch_tasks (requester, title, scope) VALUES ('r', 't', 'x') RETURNING id`.execute(db);
    const id = rows[0]!.id;
    await sql`INSERT INTO dispatch_task_events (task_id, event) VALUES (${id}, 'created')`.execute(db);
    await sql`DELETE FROM dispatch_tasks WHERE id = ${id}`.execute(db);
    const left = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_task_events WHERE task_id = ${id}`.execute(db);
    expect(left.rows[0]!.n).toBe(0);
  });

  it('shows queue depth by scope and status, and overdue work', async () => {
    await sql`
      INSERT INTO dispatch_tasks (requester, title, scope, status, assignee, assigned_at, deadline_at)
      VALUES ('r', 't', 'depth-a', 'pending', NULL, NULL, NULL),
             ('r', 't', 'depth-a', 'pending', NULL, NULL, NULL),
             ('r', 't', 'depth-a', 'assigned', 'w', now(), now() - interval '1 minute'),
             ('r', 't', 'depth-b', 'running', 'w', now(), now() + interval '1 hour')`.execute(db);
    const depth = await sql<{ scope: string; status: string; tasks: number }>`
      SELECT scope, status, tasks::int AS tasks FROM dispatch_queue_depth WHERE scope LIKE 'depth-%' ORDER BY scope, status`.execute(db);
    expect(depth.rows).toEqual([
      { scope: 'depth-a', status: 'assigned', tasks: 1 },
      { scope: 'depth-a', status: 'pending', tasks: 2 },
      { scope: 'depth-b', status: 'running', tasks: 1 },
    ]);
    const overdue = await sql<{ scope: string }>`SELECT scope FROM dispatch_overdue_tasks WHERE scope LIKE 'depth-%'`.execute(db);
    expect(overdue.rows).toEqual([{ scope: 'depth-a' }]);
  });
});

describe('the SQL functions the hot statements call per row', () => {
  /** What a statement calling `call` on the columns x and t of a row is planned to compute, as EXPLAIN VERBOSE prints it. */
  async function plannedOutput(call: string): Promise<string> {
    const { rows } = await sql<{ 'QUERY PLAN': string }>`EXPLAIN (VERBOSE, COSTS OFF) ${sql.raw(`SELECT ${call} FROM unnest('{1.5}'::float8[], ARRAY[clock_timestamp()]) AS v(x, t)`)}`.execute(db);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  }

  it('file each observation under the smallest bucket bound at or above it', async () => {
    const { rows: bounds } = await sql<{ b: number }>`SELECT unnest(dispatch_latency_buckets()) AS b`.execute(db);
    const finite = bounds.map((r) => r.b).filter((b) => Number.isFinite(b));
    const around = finite.flatMap((b) => [b, b * (1 - 1e-9), b * (1 + 1e-9)]);
    const values = [0, 1e-6, ...around, 1e300, ...fc.sample(fc.double({ min: 0, max: 10_000, noNaN: true }), 200)];
    const { rows } = await sql<{ x: number; bucket: number | null; expected: number | null }>`
      SELECT x, dispatch_latency_bucket(x) AS bucket, (SELECT min(b) FROM unnest(dispatch_latency_buckets()) AS b WHERE x <= b) AS expected
        FROM unnest(${values}::float8[] || ARRAY['Infinity', 'NaN', NULL]::float8[]) AS x`.execute(db);
    expect(rows).toHaveLength(values.length + 3);
    for (const row of rows) expect({ x: row.x, bucket: row.bucket }).toEqual({ x: row.x, bucket: row.expected });
    // A single expression the planner inlines: no query of its own per row (migration 0025).
    expect(await plannedOutput('dispatch_latency_bucket(x)')).toMatch(/width_bucket/);
  });

  it('rank a task by its ready time plus a level of aging per priority step', async () => {
    const rank = async (aging: string | null, priority: number) =>
      await db.transaction().execute(async (tx) => {
        if (aging !== null) await sql`SELECT set_config('dispatch.aging_ms', ${aging}, true)`.execute(tx);
        const { rows } = await sql<{ offset_s: number }>`
          SELECT extract(epoch FROM dispatch_task_rank('2026-01-01T00:00:00Z'::timestamptz, ${priority}::int) - '2026-01-01T00:00:00Z'::timestamptz)::float8 AS offset_s`.execute(tx);
        return rows[0]!.offset_s;
      });
    expect(await rank(null, 1)).toBe(0);
    expect(await rank(null, 3)).toBe(120);
    expect(await rank('', 2)).toBe(60);
    expect(await rank('5000', 4)).toBe(15);
    // No aging: a priority level is 1000 years.
    expect(await rank('0', 2)).toBeGreaterThan(999 * 365 * 86_400);
    expect(await plannedOutput('dispatch_task_rank(t, 2)')).toMatch(/current_setting/);
  });
});

describe('dispatch_agents.active_tasks', () => {
  beforeAll(async () => {
    await migrateToLatest(db, database.handle.pool, quiet);
  });

  const AGENTS = ['ag-1', 'ag-2', 'ag-3'] as const;
  type Agent = (typeof AGENTS)[number];

  /**
   * Agents whose counter disagrees with the tasks table: name, counter, truth. The live load
   * (dispatch_agent_live_load, migration 0022), or with `folded` the column itself, once
   * every release has been folded into it.
   */
  async function driftedAgents(executor: Db, { folded = false } = {}): Promise<Array<{ name: string; active_tasks: number; actual: number }>> {
    const { rows } = await sql<{ name: string; active_tasks: number; actual: number }>`
      SELECT a.name, CASE WHEN ${folded}::boolean THEN a.active_tasks ELSE dispatch_agent_live_load(a.active_tasks, a.released_folded, r.released) END AS active_tasks,
             (SELECT count(*)::int FROM dispatch_tasks t WHERE t.assignee = a.name AND t.status IN ('assigned', 'running')) AS actual
        FROM dispatch_agents a LEFT JOIN dispatch_agent_releases r ON r.agent = a.name
       WHERE a.name LIKE 'ag-%'`.execute(executor);
    return rows.filter((r) => r.active_tasks !== r.actual);
  }

  const agent = fc.constantFrom<Agent>(...AGENTS);
  const operation = fc.oneof(
    fc.record({ op: fc.constant('insert' as const), agent, count: fc.integer({ min: 1, max: 4 }), status: fc.constantFrom('pending', 'assigned', 'running') }),
    fc.record({ op: fc.constant('assign' as const), agent, count: fc.integer({ min: 1, max: 5 }) }),
    fc.record({ op: fc.constant('start' as const), agent }),
    fc.record({ op: fc.constant('finish' as const), agent, status: fc.constantFrom('completed', 'failed', 'cancelled', 'timeout') }),
    fc.record({ op: fc.constant('reassign' as const), agent, to: agent }),
    fc.record({ op: fc.constant('requeue' as const), agent, keepAssignee: fc.boolean() }),
    fc.record({ op: fc.constant('delete' as const), agent }),
    fc.record({ op: fc.constant('reregister' as const), agent }),
    fc.record({ op: fc.constant('fold' as const) }),
  );
  type Operation = typeof operation extends fc.Arbitrary<infer T> ? T : never;

  async function apply(tx: Db, step: Operation): Promise<void> {
    switch (step.op) {
      case 'insert':
        await sql`
          INSERT INTO dispatch_tasks (requester, title, scope, status, assignee, assigned_at, attempt)
          SELECT 'r', 't', 'x', ${step.status}, CASE WHEN ${step.status} = 'pending' THEN NULL ELSE ${step.agent} END,
                 CASE WHEN ${step.status} = 'pending' THEN NULL ELSE now() END, CASE WHEN ${step.status} = 'pending' THEN 0 ELSE 1 END
            FROM generate_series(1, ${step.count})`.execute(tx);
        return;
      case 'assign':
        // Several rows for one agent in one statement: the statement trigger must add them all.
        await sql`
          UPDATE dispatch_tasks SET status = 'assigned', assignee = ${step.agent}, assigned_at = now(), attempt = attempt + 1
           WHERE id IN (SELECT id FROM dispatch_tasks WHERE status = 'pending' LIMIT ${step.count})`.execute(tx);
        return;
      case 'start':
        await sql`UPDATE dispatch_tasks SET status = 'running', started_at = now() WHERE assignee = ${step.agent} AND status = 'assigned'`.execute(tx);
        return;
      case 'finish':
        await sql`
          UPDATE dispatch_tasks SET status = ${step.status}, completed_at = now()
           WHERE id = (SELECT id FROM dispatch_tasks WHERE assignee = ${step.agent} AND status IN ('assigned', 'running') LIMIT 1)`.execute(tx);
        return;
      case 'reassign':
        await sql`UPDATE dispatch_tasks SET assignee = ${step.to} WHERE assignee = ${step.agent} AND status IN ('assigned', 'running')`.execute(tx);
        return;
      case 'requeue':
        await sql`
          UPDATE dispatch_tasks SET status = 'pending', assignee = CASE WHEN ${step.keepAssignee}::boolean THEN assignee END
           WHERE assignee = ${step.agent} AND status IN ('assigned', 'running')`.execute(tx);
        return;
      case 'delete':
        await sql`DELETE FROM dispatch_tasks WHERE id = (SELECT id FROM dispatch_tasks WHERE assignee = ${step.agent} LIMIT 1)`.execute(tx);
        return;
      case 'reregister':
        // An agent row removed and added back starts from the tasks it already holds.
        await sql`DELETE FROM dispatch_agents WHERE name = ${step.agent}`.execute(tx);
        await sql`INSERT INTO dispatch_agents (name, capabilities) VALUES (${step.agent}, '{x}')`.execute(tx);
        return;
      case 'fold':
        await sql`SELECT dispatch_fold_agent_releases()`.execute(tx);
        return;
    }
  }

  class Rollback extends Error {}

  it('counts an agent’s assigned and running tasks exactly, whatever sequence of changes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 25 }), async (steps) => {
        // Each run starts from an empty queue and leaves nothing behind.
        await db
          .transaction()
          .execute(async (tx) => {
            await sql`DELETE FROM dispatch_tasks`.execute(tx);
            await sql`DELETE FROM dispatch_agents WHERE name LIKE 'ag-%'`.execute(tx);
            for (const name of AGENTS) await sql`INSERT INTO dispatch_agents (name, capabilities) VALUES (${name}, '{x}')`.execute(tx);
            for (const step of steps) {
              await apply(tx, step);
              const drifted = await driftedAgents(tx);
              if (drifted.length > 0) throw new Error(`after ${JSON.stringify(step)}: ${JSON.stringify(drifted)}`);
            }
            await sql`SELECT dispatch_fold_agent_releases()`.execute(tx);
            const unfolded = await driftedAgents(tx, { folded: true });
            if (unfolded.length > 0) throw new Error(`active_tasks after the last fold: ${JSON.stringify(unfolded)}`);
            throw new Rollback();
          })
          .catch((error: unknown) => {
            if (!(error instanceof Rollback)) throw error;
          });
      }),
      { numRuns: 40 },
    );
  });

  it('moves the counters as tasks are assigned, moved and finished', async () => {
    await sql`DELETE FROM dispatch_tasks`.execute(db);
    await sql`DELETE FROM dispatch_agents WHERE name LIKE 'ag-%'`.execute(db);
    await sql`INSERT INTO dispatch_agents (name) VALUES ('ag-1'), ('ag-2')`.execute(db);
    const counters = async () => {
      const { rows } = await sql<{ name: string; active_tasks: number }>`
        SELECT name, active_tasks FROM dispatch_agent_load WHERE name LIKE 'ag-%' ORDER BY name`.execute(db);
      return Object.fromEntries(rows.map((r) => [r.name, r.active_tasks]));
    };
    await sql`INSERT INTO dispatch_tasks (requester, title, scope) SELECT 'r', 't', 'x' FROM generate_series(1, 5)`.execute(db);
    await sql`UPDATE dispatch_tasks SET status = 'assigned', assignee = 'ag-1', assigned_at = now() WHERE id IN (SELECT id FROM dispatch_tasks LIMIT 3)`.execute(db);
    await sql`UPDATE dispatch_tasks SET status = 'assigned', assignee = 'ag-2', assigned_at = now() WHERE status = 'pending'`.execute(db);
    expect(await counters()).toEqual({ 'ag-1': 3, 'ag-2': 2 });
    await sql`UPDATE dispatch_tasks SET assignee = 'ag-2' WHERE id = (SELECT id FROM dispatch_tasks WHERE assignee = 'ag-1' LIMIT 1)`.execute(db);
    expect(await counters()).toEqual({ 'ag-1': 2, 'ag-2': 3 });
    await sql`UPDATE dispatch_tasks SET status = 'completed', completed_at = now() WHERE assignee = 'ag-2'`.execute(db);
    expect(await counters()).toEqual({ 'ag-1': 2, 'ag-2': 0 });
    await sql`DELETE FROM dispatch_tasks WHERE assignee = 'ag-1'`.execute(db);
    expect(await counters()).toEqual({ 'ag-1': 0, 'ag-2': 0 });
  });

  it('starts a new agent row from the tasks its name holds, and reads no task for a registration or heartbeat of a known one', async () => {
    await sql`DELETE FROM dispatch_tasks`.execute(db);
    await sql`DELETE FROM dispatch_agents WHERE name LIKE 'ag-%'`.execute(db);
    await sql`INSERT INTO dispatch_tasks (requester, title, scope, status, assignee, assigned_at, attempt) SELECT 'r', 't', 'x', 'assigned', 'ag-1', now(), 1 FROM generate_series(1, 3)`.execute(db);
    const registration = { name: 'ag-1', capabilities: ['x'], status: 'ready' as const, maxConcurrent: 5 };
    // The tasks table's scans by the registration's statement: the session's own counts, not yet
    // reported (pg_stat_xact_user_tables), before and after it in one transaction.
    const register = async () =>
      await db.transaction().execute(async (tx) => {
        const scans = async () =>
          (await sql<{ n: number }>`
            SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::int AS n FROM pg_stat_xact_user_tables WHERE relname = 'dispatch_tasks'`.execute(tx)).rows[0]!.n;
        const before = await scans();
        const [row] = await registerAgents(tx, [registration]);
        return { activeTasks: row!.active_tasks, tasksRead: (await scans()) - before };
      });
    const first = await register();
    expect(first.activeTasks).toBe(3);
    expect(first.tasksRead).toBeGreaterThan(0);
    expect(await register()).toEqual({ activeTasks: 3, tasksRead: 0 });
  });
});

describe('replicas starting together', () => {
  let shared: TestDatabase;
  beforeAll(async () => {
    shared = await createTestDatabase({ empty: true });
  });
  afterAll(async () => {
    await shared?.drop();
  });

  it('three connections migrating at once all succeed, and the work is done once', async () => {
    const handles = [0, 1, 2].map((i) => openDatabase(shared.url, 2, `dispatch-migrate-${i}`));
    try {
      const reports = await Promise.all(handles.map((h) => migrateToLatest(h.db, h.pool, quiet)));
      const applied = reports.map((r) => r.applied).sort((a, b) => b.length - a.length);
      expect(applied).toEqual([ALL_MIGRATIONS, [], []]);
      for (const handle of handles) expect(await isMigrated(handle.db)).toBe(true);
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM kysely_migration`.execute(shared.handle.db);
      expect(rows[0]!.n).toBe(ALL_MIGRATIONS.length);
      // The schema works: a task can be written and read back.
      await sql`INSERT INTO dispatch_tasks (requester, title, scope) VALUES ('r', 't', 'x')`.execute(shared.handle.db);
    } finally {
      await Promise.all(handles.map((h) => h.close()));
    }
  });
});
