import { sql } from 'kysely';
import { claimPendingTasks } from '../../src/assignment/assignment.queries.js';
import type { Db } from '../../src/db/database.js';
import { listTaskEvents, listTasks } from '../../src/tasks/task.queries.js';
import { getTask } from '../../src/tasks/task.service.js';
import { readOldestPending } from '../../src/tasks/queue-metrics.queries.js';
import { scopeOverview } from '../../src/scopes/scope.service.js';
import { readQueueStats } from '../../src/tasks/stats.queries.js';
import { REPLICA_ADMIN_TOKEN } from '../../test/helpers/replica-process.js';
import { withBenchDatabase } from './database.js';
import { withReplicas } from './replicas.js';
import { openPlanCapture, type StatementPlan } from './query-plans.js';
import { BENCH_SCOPE, insertFinished, insertPending } from './workload.js';

/**
 * Query cost against table size: the claim and the API's reads, run through the product's own
 * functions on a table holding `rows` tasks (1% pending, the rest finished, one event each), with
 * the plan PostgreSQL chose for each.
 */
export interface ScaleQuery {
  name: string;
  plan: StatementPlan;
}

/** A whole HTTP request to a replica on the table, as a scraper or an operator makes it. */
export interface ScaleRequest {
  name: string;
  /** Median and slowest of REQUEST_REPEATS, after one warm-up. */
  medianMs: number;
  maxMs: number;
}

export interface ScaleRun {
  rows: number;
  tableMb: number;
  queries: ScaleQuery[];
  requests: ScaleRequest[];
}

const REPEATS = 3;
const REQUEST_REPEATS = 9;

/** Times GET `url` (median and max of REQUEST_REPEATS, after a warm-up); any answer but 200 fails the run. */
async function timeRequest(name: string, url: string, headers: Record<string, string>): Promise<ScaleRequest> {
  const times: number[] = [];
  for (let i = 0; i <= REQUEST_REPEATS; i++) {
    const started = performance.now();
    const response = await fetch(url, { headers });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${name}: ${response.status}`);
    if (i > 0) times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { name, medianMs: times[Math.floor(times.length / 2)]!, maxMs: times[times.length - 1]! };
}

/** The scrape, GET /api/v1/stats and GET /api/v1/scopes through one replica on the filled table. */
async function timeRequests(databaseUrl: string): Promise<ScaleRequest[]> {
  return await withReplicas(databaseUrl, { count: 1 }, async ([replica]) => {
    const admin = { authorization: `Bearer ${REPLICA_ADMIN_TOKEN}`, 'x-agent-id': 'bench-operator' };
    return [
      await timeRequest('GET /metrics (the whole scrape)', `${replica!.opsUrl}/metrics`, {}),
      await timeRequest('GET /api/v1/stats', `${replica!.apiUrl}/api/v1/stats`, admin),
      await timeRequest('GET /api/v1/scopes', `${replica!.apiUrl}/api/v1/scopes`, admin),
    ];
  });
}

/** The row in the middle of the newest-first order, as a keyset cursor. */
async function middleCursor(db: Db, rows: number): Promise<{ created_at: string; id: string }> {
  const { rows: found } = await sql<{ created_at: string; id: string }>`
    SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at, id
      FROM dispatch_tasks ORDER BY created_at DESC, id DESC OFFSET ${Math.floor(rows / 2)} LIMIT 1`.execute(db);
  return found[0]!;
}

async function fill(db: Db, rows: number): Promise<void> {
  const pending = Math.max(100, Math.floor(rows / 100));
  await insertFinished(db, rows - pending);
  await insertPending(db, pending);
  await sql`
    INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
    SELECT id, 'created', requester, 0, '{}'::jsonb FROM dispatch_tasks`.execute(db);
  // Nothing publishes in this scenario; the owed-events queue is not what is measured.
  await sql`TRUNCATE dispatch_event_outbox`.execute(db);
  await sql`VACUUM ANALYZE dispatch_tasks`.execute(db);
  await sql`VACUUM ANALYZE dispatch_task_events`.execute(db);
}

export async function scaleRun(rows: number): Promise<ScaleRun> {
  return await withBenchDatabase(`scale_${rows}`, async (database) => {
    await fill(database.handle.db, rows);
    const { rows: size } = await sql<{ mb: number }>`
      SELECT pg_total_relation_size('dispatch_tasks') / 1048576.0 AS mb`.execute(database.handle.db);
    const cursor = await middleCursor(database.handle.db, rows);
    const { rows: sample } = await sql<{ id: string }>`
      SELECT id FROM dispatch_tasks WHERE status = 'completed' ORDER BY created_at OFFSET ${Math.floor(rows / 3)} LIMIT 1`.execute(database.handle.db);
    const taskId = sample[0]!.id;

    const capture = openPlanCapture(database.url, ['dispatch_tasks', 'dispatch_task_events']);
    const db = capture.handle.db;
    const workload: Array<[string, () => Promise<unknown>]> = [
      ['claim of 500 (claimPendingTasks)', () => db.transaction().execute((tx) => claimPendingTasks(tx, [BENCH_SCOPE], 500))],
      ['list, newest first', () => listTasks(db, { limit: 50 })],
      ['list, status=pending', () => listTasks(db, { status: 'pending', limit: 50 })],
      ['list, assignee=…', () => listTasks(db, { assignee: 'bench-agent-007', limit: 50 })],
      ['list, requester=…', () => listTasks(db, { requester: 'history', limit: 50 })],
      ['list, page in the middle (keyset)', () => listTasks(db, { limit: 50, after: cursor })],
      // A caller that reads only its own tasks: as requester, as assignee, as a reader (three indexes).
      ["list, a worker's or requester's own (involving=…)", () => listTasks(db, { involving: 'history', limit: 50 })],
      // GET /:id reads through the route's batched lookup (one `id = ANY(...)` statement per batch).
      ['get by id (getTask)', () => getTask(db, taskId)],
      // GET /:id/events also runs getTask first (the row above); this is its own statement.
      ['events of a task', () => listTaskEvents(db, taskId)],
      // The metrics scrape's only statement that reads a task table (the rest read counters).
      ['scrape: oldest pending per scope', () => readOldestPending(db)],
      // GET /api/v1/scopes: counters and dispatch_scopes, plus the same probe per scope as the scrape.
      ['GET /api/v1/scopes (scopeOverview)', () => scopeOverview(db)],
      // GET /api/v1/stats: open work from the counters; the one statement reads the finished window.
      ['GET /api/v1/stats (readQueueStats)', () => readQueueStats(db)],
    ];
    const queries: ScaleQuery[] = [];
    try {
      for (const [name, run] of workload) {
        let plans: StatementPlan[] = [];
        // The last of a few runs: warm caches, as a live server has them.
        for (let i = 0; i < REPEATS; i++) plans = await capture.plansOf(run);
        if (plans.length !== 1) throw new Error(`${name}: expected one statement reading the task tables, got ${plans.length}`);
        queries.push({ name, plan: plans[0]! });
      }
    } finally {
      await capture.handle.close();
    }
    return { rows, tableMb: Number(size[0]!.mb), queries, requests: await timeRequests(database.url) };
  });
}
