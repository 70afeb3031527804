import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import { insertTask, type NewTask } from '../../src/tasks/task.queries.js';
import { ReplicaClient } from '../../test/helpers/simulated-agents.js';
import { LeanHttp } from './lean-http.js';
import { summarize, type LatencySummary } from './stats.js';

export const BENCH_SCOPE = 'bench';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The simulated swarm announces itself the way standalone agents do (PUT /api/v1/agents/:id),
 * each with a large limit so agent capacity is never what the benchmark measures, and repeats it
 * as a heartbeat (an agent silent past assignment.agent_heartbeat_timeout_ms counts as stopped,
 * and its tasks go back to pending). Call `stop()` when the scenario ends.
 */
export async function registerAgents(
  urls: readonly string[],
  count: number,
  maxConcurrent: number,
  heartbeatMs = 10_000,
): Promise<{ names: string[]; stop(): Promise<void> }> {
  const client = new ReplicaClient(urls);
  const names = Array.from({ length: count }, (_, i) => `bench-agent-${String(i).padStart(3, '0')}`);
  const announce = () =>
    Promise.all(
      names.map(async (name, i) => {
        const body = { capabilities: [BENCH_SCOPE], status: 'ready', max_concurrent: maxConcurrent };
        const response = await client.call('PUT', `/api/v1/agents/${name}`, { agent: name, body, prefer: i });
        if (response.status !== 200) throw new Error(`registering ${name}: ${response.status} ${JSON.stringify(response.body)}`);
      }),
    );
  await announce();
  let beating: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    beating = announce().catch((error: unknown) => console.warn(`agent heartbeat failed: ${String(error)}`));
  }, heartbeatMs);
  return {
    names,
    async stop() {
      clearInterval(timer);
      await beating;
    },
  };
}

export interface PacedResult {
  created: number;
  elapsedMs: number;
  /** Creations that started more than 5 ms behind their slot (the client or server could not keep up). */
  late: number;
}

/** A task as POST /api/v1/tasks would insert it for the bench scope, with the API's defaults. */
export function benchTask(requester: string, title: string): NewTask {
  return {
    requester,
    title,
    description: null,
    scope: BENCH_SCOPE,
    priority: 3,
    context: null,
    timeout_ms: 300_000,
    heartbeat_timeout_ms: null,
    start_timeout_ms: null,
    max_retries: 1,
    parent_id: null,
    idempotency_key: null,
  };
}

/** How a paced creation reaches the database: over REST, or the REST handler's own INSERT run directly. */
export type Arrival = { via: 'rest'; urls: readonly string[] } | { via: 'sql'; db: Db };

function creator(arrival: Arrival, requester: string): (i: number) => Promise<void> {
  if (arrival.via === 'sql') {
    return async (i) => {
      await insertTask(arrival.db, benchTask(requester, `bench ${i}`));
    };
  }
  const { urls } = arrival;
  return async (i) => {
    const r = await lean.request(`${urls[i % urls.length]}/api/v1/tasks`, 'POST', { 'x-agent-id': requester }, { title: `bench ${i}`, scope: BENCH_SCOPE });
    if (r.status !== 201) throw new Error(`create: ${r.status} ${JSON.stringify(r.body)}`);
  };
}

/** One keep-alive pool for every paced creation of the run. */
const lean = new LeanHttp();

/**
 * Open-loop arrivals: one creation every 1000/rate ms whatever the previous ones are doing (at
 * most `maxInFlight` outstanding), for `count` tasks.
 */
export async function createPaced(
  arrival: Arrival,
  { rate, count, maxInFlight = 64, requester = 'bench-requester' }: { rate: number; count: number; maxInFlight?: number; requester?: string },
): Promise<PacedResult> {
  const create = creator(arrival, requester);
  const interval = 1_000 / rate;
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  let late = 0;
  let failure: unknown;
  for (let i = 0; i < count && !failure; i++) {
    const due = started + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    else if (wait < -5) late++;
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    const p: Promise<void> = create(i)
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  return { created: count, elapsedMs: performance.now() - started, late };
}

/**
 * A checkpoint before a backlog is written and drained, so that none starts during the drain.
 * PostgreSQL starts one each time the WAL since the last reaches about max_wal_size / (1 +
 * checkpoint_completion_target) (540 MB of this server's 1 GB), which a few drains write; a drain
 * that met one wrote every page it touched first whole into the WAL again (8,300-15,000 bytes a task
 * against 2,500-2,900) and ran up to twice as slowly as its neighbours: which drain that was, was
 * chance, and single drains of one history moved by half (docs/BENCHMARKS.md, session 34).
 */
export async function checkpointBeforeBacklog(db: Db): Promise<void> {
  await sql`CHECKPOINT`.execute(db);
}

/** Pending tasks in one statement (the wake-up trigger fires once, at its end). */
export async function insertPending(db: Db, count: number): Promise<void> {
  await sql`
    INSERT INTO dispatch_tasks (requester, title, scope)
    SELECT 'bench-bulk', 'backlog ' || n, ${BENCH_SCOPE} FROM generate_series(1, ${count}) AS n`.execute(db);
}

/**
 * History: finished tasks as they look after a real run (assigned, started, completed, result),
 * spread over the past day, inserted in chunks, then vacuumed, analysed and checkpointed like a table
 * that has lived for a while.
 */
export async function insertFinished(db: Db, count: number): Promise<void> {
  const chunk = 200_000;
  for (let done = 0; done < count; done += chunk) {
    const n = Math.min(chunk, count - done);
    await sql`
      INSERT INTO dispatch_tasks (requester, title, scope, status, assignee, attempt, result, created_at, assigned_at, started_at, completed_at)
      SELECT 'history', 'finished ' || g, ${BENCH_SCOPE}, 'completed', 'bench-agent-' || lpad((g % 50)::text, 3, '0'), 1,
             '{"ok": true}'::jsonb, t, t + interval '2 ms', t + interval '5 ms', t + interval '50 ms'
        FROM generate_series(1, ${n}) AS g, LATERAL (SELECT now() - interval '1 day' + (g * interval '1 ms') AS t) ts`.execute(db);
  }
  await sql`VACUUM ANALYZE dispatch_tasks`.execute(db);
  // The load and the vacuum leave gigabytes of dirty pages (10 M rows: 5 GB) that the server and
  // the kernel would otherwise write out during the measurement, every commit's WAL flush queueing
  // behind them: the figure would measure the bulk load's aftermath, not the history.
  await sql`CHECKPOINT`.execute(db);
}

/**
 * Completes (up to `limit` of) one agent's assigned tasks in bulk the way POST /complete does (status and
 * event), standing in for an agent finishing work far faster than HTTP calls on
 * this machine could. One agent per statement, as real completions are: a statement touching
 * many agents would lock their rows in no particular order and could deadlock with the assigner,
 * which locks them in name order.
 */
export async function completeAssigned(db: Db, agent: string, limit: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    WITH picked AS (
      -- Newest first, along dispatch_tasks_assignee_idx (an agent's assigned tasks are its newest),
      -- and then by key: statistics from before the run (a --sustained-history table analysed with
      -- no task assigned) had the planner read every assigned task for each agent, then join the
      -- picked rows against all of them again, row by row.
      SELECT id FROM dispatch_tasks WHERE assignee = ${agent} AND status = 'assigned'
       ORDER BY created_at DESC, id DESC LIMIT ${limit} FOR UPDATE SKIP LOCKED
    ), t AS (
      UPDATE dispatch_tasks d SET status = 'completed', result = '{"ok": true}'::jsonb, completed_at = now(), deadline_at = NULL
       WHERE d.id = ANY (ARRAY(SELECT id FROM picked)) AND d.status = 'assigned'
      RETURNING d.id, d.assignee, d.attempt
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
      SELECT id, 'completed', assignee, attempt, jsonb_build_object('task_id', id, 'result', '{"ok": true}'::jsonb) FROM t
    )
    SELECT count(*)::int AS n FROM t`.execute(db);
  return rows[0]?.n ?? 0;
}

export async function countByStatus(db: Db): Promise<Record<string, number>> {
  const { rows } = await sql<{ status: string; n: number }>`SELECT status, count(*)::int AS n FROM dispatch_tasks GROUP BY status`.execute(db);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Waits until no task is pending any more. The probe stops at the first pending task: counting
 * them all, ten times a second, cost the database 13 ms a look at the start of a 100 k drain, CPU
 * the drain it measures then went without (graphile-worker's own yardstick counts in process).
 */
export async function waitAssigned(db: Db, timeoutMs: number): Promise<void> {
  await waitUntil(
    'every task assigned',
    async () => (await sql<{ done: boolean }>`SELECT NOT EXISTS (SELECT 1 FROM dispatch_tasks WHERE status = 'pending') AS done`.execute(db)).rows[0]!.done,
    timeoutMs,
    100,
  );
}

/** assigned_at - created_at of first attempts, as the database stamped them. */
export async function createToAssigned(db: Db, requester: string): Promise<LatencySummary> {
  const { rows } = await sql<{ ms: number }>`
    SELECT extract(epoch FROM assigned_at - created_at) * 1000 AS ms
      FROM dispatch_tasks WHERE requester = ${requester} AND assigned_at IS NOT NULL`.execute(db);
  return summarize(rows.map((r) => Number(r.ms)));
}

/** The database's clock now (the stamps above come from it). */
export async function dbNow(db: Db): Promise<Date> {
  const { rows } = await sql<{ t: Date }>`SELECT clock_timestamp() AS t`.execute(db);
  return rows[0]!.t;
}

export interface DrainFigures {
  tasks: number;
  /** From the backlog being committed to the last assignment: what a user waits. */
  endToEndMs: number;
  /** From the first assignment to the last: how fast the engine works once it runs. */
  engineMs: number;
}

/** `createdAfter`: only the backlog inserted after that instant (a scenario draining several in turn). */
export async function drainFigures(db: Db, readyAt: Date, createdAfter = new Date(0)): Promise<DrainFigures> {
  const { rows } = await sql<{ n: number; first: Date; last: Date }>`
    SELECT count(*)::int AS n, min(assigned_at) AS first, max(assigned_at) AS last
      FROM dispatch_tasks WHERE requester = 'bench-bulk' AND assigned_at IS NOT NULL AND created_at > ${createdAfter}`.execute(db);
  const r = rows[0]!;
  return { tasks: r.n, endToEndMs: r.last.getTime() - readyAt.getTime(), engineMs: r.last.getTime() - r.first.getTime() };
}

/**
 * The v1 schedule on today's engine: the database's instant wake-ups are switched off (the
 * triggers that wake the assigners on new work, NOTIFY dispatch_assign), so only the tick (tick_interval_ms)
 * starts an assignment pass — as v1's 5 s loop did. Assignment itself is unchanged.
 */
export async function disableInstantWake(db: Db): Promise<void> {
  await sql`ALTER TABLE dispatch_tasks DISABLE TRIGGER dispatch_tasks_wake_on_insert`.execute(db);
  await sql`ALTER TABLE dispatch_tasks DISABLE TRIGGER dispatch_tasks_wake_on_update`.execute(db);
  await sql`ALTER TABLE dispatch_agents DISABLE TRIGGER dispatch_agents_wake_on_insert`.execute(db);
  await sql`ALTER TABLE dispatch_agents DISABLE TRIGGER dispatch_agents_wake_on_update`.execute(db);
}

/** The server's WAL position: exact at any instant, unlike the cumulative statistics views. */
export async function walPosition(db: Db): Promise<string> {
  const { rows } = await sql<{ lsn: string }>`SELECT pg_current_wal_lsn()::text AS lsn`.execute(db);
  return rows[0]!.lsn;
}

export async function walBytesSince(db: Db, lsn: string): Promise<number> {
  const { rows } = await sql<{ bytes: string }>`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}::pg_lsn)::text AS bytes`.execute(db);
  return Number(rows[0]!.bytes);
}

/** Counters of the server's WAL and of this database's shared buffers, to difference around a measurement of several seconds (backends add theirs about once a second). */
export interface IoCounters {
  walBytes: number;
  walRecords: number;
  /** Full-page images: the first change to a page after a checkpoint writes the whole page. */
  walFpi: number;
  /** Pages found in shared_buffers, and read from outside them. */
  bufferHits: number;
  bufferReads: number;
}

export async function readIoCounters(db: Db): Promise<IoCounters> {
  const { rows } = await sql<{ wal_bytes: string; wal_records: string; wal_fpi: string; hits: string; reads: string }>`
    SELECT w.wal_bytes, w.wal_records, w.wal_fpi, d.blks_hit AS hits, d.blks_read AS reads
      FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()`.execute(db);
  const r = rows[0]!;
  return { walBytes: Number(r.wal_bytes), walRecords: Number(r.wal_records), walFpi: Number(r.wal_fpi), bufferHits: Number(r.hits), bufferReads: Number(r.reads) };
}

/** What happened between two readings, per task. */
export function ioPerTask(before: IoCounters, after: IoCounters, tasks: number): IoCounters {
  const per = (key: keyof IoCounters) => (after[key] - before[key]) / Math.max(1, tasks);
  return { walBytes: per('walBytes'), walRecords: per('walRecords'), walFpi: per('walFpi'), bufferHits: per('bufferHits'), bufferReads: per('bufferReads') };
}
