/**
 * `npm run bench` — assignment on a real PostgreSQL, with Dispatch replicas as separate processes.
 *
 *   npm run bench                         short profile (CI): about 8 minutes
 *   npm run bench -- --profile full       10-minute sustained run, larger samples
 *   npm run bench -- --profile smoke      every scenario at toy sizes (checks the bench runs)
 *   npm run bench -- --only latency,drain run some scenarios (latency, drain, history, sustained, http, scale)
 *   npm run bench -- --sustained-s 120    override the sustained run's length
 *   npm run bench -- --batch-size 1000    assignment.batch_size for the replicas
 *   npm run bench -- --vacuum-interval-ms 0   queue maintenance off (shows the decay without it)
 *   npm run bench -- --sustained-history 2000000  start the sustained run on that much history
 *
 * DISPATCH_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the
 * server; each scenario creates a fresh database on it and drops it afterwards. Everything runs on
 * 127.0.0.1. Scenarios:
 *
 *  - latency: create-to-assigned (assigned_at - created_at, stamped by the database) for tasks
 *    created over REST one at a time with gaps (idle), and at ~1,000 creates/s.
 *  - drain: a 100 k pending backlog committed in one statement, assigned with 1 and 3 replicas.
 *  - history: cost per assignment with 10 k and 1 M finished tasks already in the table.
 *  - sustained: 3 replicas assigning while new work keeps arriving and finished work is
 *    completed, reported per 10 s window, to show there is no decay.
 *  - http: POST /api/v1/tasks under autocannon (50 connections split over the replicas) with 1
 *    and with 3 replicas, agents registered so every task is also assigned meanwhile; latency
 *    percentiles from the replicas' histograms merged, create-to-assigned from the table.
 *  - scale: the claim and the API's reads on tables of 10 k, 100 k and 1 M tasks, through the
 *    product's own query functions, with the plan PostgreSQL chose (auto_explain); a sequential
 *    scan of the task tables at 100 k rows or more fails the run.
 *
 * "v1-style 5 s tick": the database's instant wake-ups are switched off in that scenario's database
 * (the triggers that enqueue an assignment pass when work appears), the replicas' own tick is set
 * to an hour, and the benchmark runs one assignment pass every 5 s (bench/lib/v1-poller.ts): what
 * is pending at the tick is placed, then nothing until the next tick — v1's schedule. The pass is
 * Dispatch's own batched claim, not v1's per-task HTTP calls and row-by-row writes, so the
 * emulation flatters v1: the ratios are a lower bound of the difference.
 */
import { sql } from 'kysely';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { DispatchConfigInput } from '../src/config/config.js';
import { parseConfig } from '../src/config/load.js';
import type { Db } from '../src/db/database.js';
import type { ReplicaProcess } from '../test/helpers/replica-process.js';
import { withBenchDatabase, type BenchDatabase } from './lib/database.js';
import { loadPhase, type LoadResult, type RequestShape } from './lib/http-load.js';
import { scrapeSum, withReplicas } from './lib/replicas.js';
import { scaleRun, type ScaleRun } from './lib/scale.js';
import { fmtMs, fmtRate, ratio, table, type LatencySummary } from './lib/stats.js';
import { V1Poller } from './lib/v1-poller.js';
import {
  BENCH_SCOPE,
  completeAssigned,
  createPaced,
  createToAssigned,
  dbNow,
  disableInstantWake,
  drainFigures,
  insertFinished,
  insertPending,
  registerAgents,
  waitAssigned,
  type DrainFigures,
} from './lib/workload.js';

const { values: args } = parseArgs({
  options: {
    profile: { type: 'string', default: process.env.BENCH_PROFILE ?? 'short' },
    only: { type: 'string' },
    'sustained-s': { type: 'string' },
    'batch-size': { type: 'string' },
    'vacuum-interval-ms': { type: 'string' },
    'sustained-history': { type: 'string' },
  },
});

const FULL = args.profile === 'full';
// smoke: a quick check that every scenario runs (numbers too small to quote).
const SMOKE = args.profile === 'smoke';
const PROFILE = {
  idleTasks: FULL ? 1_000 : SMOKE ? 40 : 300,
  idleGapMs: 50,
  rate: 1_000,
  rateSeconds: FULL ? 30 : SMOKE ? 2 : 10,
  backlog: SMOKE ? 5_000 : 100_000,
  historySmall: SMOKE ? 1_000 : 10_000,
  historyLarge: SMOKE ? 20_000 : 1_000_000,
  historyBacklog: SMOKE ? 2_000 : 20_000,
  sustainedSeconds: Number(args['sustained-s'] ?? (FULL ? 600 : SMOKE ? 20 : 60)),
  agents: 50,
  agentLimit: 2_000,
  httpWarmupS: SMOKE ? 1 : 2,
  httpSeconds: FULL ? 30 : SMOKE ? 2 : 10,
  scaleRows: SMOKE ? [1_000, 5_000, 20_000] : [10_000, 100_000, 1_000_000],
};
/** assignment.vacuum_interval_ms for the replicas: the shipped default unless given (0 turns it off). */
const VACUUM_INTERVAL_MS = Number(args['vacuum-interval-ms'] ?? parseConfig({}).assignment.vacuum_interval_ms);
/** assignment.batch_size: the shipped default unless --batch-size says otherwise. */
const BATCH_SIZE = Number(args['batch-size'] ?? parseConfig({}).assignment.batch_size);
const only = args.only ? new Set(args.only.split(',')) : null;
const wants = (name: string) => !only || only.has(name);

type Mode = 'instant' | 'tick';
const MODE_LABEL: Record<Mode, string> = { instant: 'Dispatch (instant wake)', tick: 'v1-style 5 s tick' };

function log(message: string): void {
  // The load average says how busy the machine was (other work skews every figure).
  const load = loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`[${new Date().toISOString().slice(11, 19)} load ${load}] ${message}`);
}

const V1_TICK_MS = 5_000;

/** Replica config for a mode: in v1 mode the replicas never assign by themselves. */
function schedulerConfig(mode: Mode): DispatchConfigInput {
  return {
    assignment: { batch_size: BATCH_SIZE, vacuum_interval_ms: VACUUM_INTERVAL_MS, ...(mode === 'tick' ? { tick_interval_ms: 3_600_000 } : {}) },
  };
}

/**
 * Runs `fn` with the scheduler of `mode` in place: Dispatch's own, or the v1 emulation. `fn` gets
 * the mean assignment transaction time of whichever did the assigning.
 */
async function withScheduler<T>(
  database: BenchDatabase,
  mode: Mode,
  replicas: readonly ReplicaProcess[],
  fn: (meanBatch: () => Promise<number>) => Promise<T>,
): Promise<T> {
  if (mode === 'instant') return await fn(() => meanBatchMs(replicas));
  await disableInstantWake(database.handle.db);
  const poller = new V1Poller(database.handle, { intervalMs: V1_TICK_MS, batchSize: BATCH_SIZE, defaultMaxConcurrent: 3 });
  poller.start();
  try {
    return await fn(() => poller.meanBatchMs());
  } finally {
    await poller.stop();
  }
}

/** Mean duration of one assignment transaction, from the replicas' own histogram. */
async function meanBatchMs(replicas: readonly ReplicaProcess[]): Promise<number> {
  const sum = await scrapeSum(replicas, 'dispatch_assignment_batch_seconds_sum');
  const count = await scrapeSum(replicas, 'dispatch_assignment_batch_seconds_count');
  return count > 0 ? (sum / count) * 1_000 : Number.NaN;
}

/** The simulated agents (registered over REST, heartbeating) for the length of `fn`. */
async function withSwarm<T>(
  replicas: readonly ReplicaProcess[],
  fn: (swarm: { names: string[] }) => Promise<T>,
  agentLimit = PROFILE.agentLimit,
): Promise<T> {
  const swarm = await registerAgents(
    replicas.map((r) => r.apiUrl),
    PROFILE.agents,
    agentLimit,
  );
  try {
    return await fn(swarm);
  } finally {
    await swarm.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Latency

type Load = 'idle' | 'rate-rest' | 'rate-sql';

interface LatencyRun {
  mode: Mode;
  load: Load;
  summary: LatencySummary;
  achievedRate: number;
  late: number;
}

async function latencyRun(mode: Mode, load: Load): Promise<LatencyRun> {
  return await withBenchDatabase(`lat_${mode}`, async (database) => {
    const db = database.handle.db;
    return await withReplicas(database.url, { count: 1, config: schedulerConfig(mode) }, (replicas) =>
      withSwarm(replicas, async () => {
        const rest = { via: 'rest', urls: replicas.map((r) => r.apiUrl) } as const;
        // Warm-up (connections, plans, JIT of the replica's code); not measured.
        await createPaced(rest, { rate: 200, count: 200, maxInFlight: 4 });
        await waitAssigned(db, 30_000);
        await sql`DELETE FROM dispatch_tasks`.execute(db);
        const paced = await withScheduler(database, mode, replicas, async () => {
          const count = PROFILE.rate * PROFILE.rateSeconds;
          const requester = 'bench-measured';
          const result =
            load === 'idle'
              ? await createPaced(rest, { rate: 1_000 / PROFILE.idleGapMs, count: PROFILE.idleTasks, maxInFlight: 1, requester })
              : load === 'rate-rest'
                ? await createPaced(rest, { rate: PROFILE.rate, count, maxInFlight: 128, requester })
                : await createPaced({ via: 'sql', db }, { rate: PROFILE.rate, count, maxInFlight: 8, requester });
          await waitAssigned(db, 60_000);
          return result;
        });
        const summary = await createToAssigned(db, 'bench-measured');
        return { mode, load, summary, achievedRate: (paced.created * 1_000) / paced.elapsedMs, late: paced.late };
      }),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Backlog drain

interface DrainRun extends DrainFigures {
  mode: Mode;
  replicas: number;
  meanBatchMs: number;
}

async function drainRun(mode: Mode, replicaCount: number): Promise<DrainRun> {
  return await withBenchDatabase(`drain_${mode}_${replicaCount}`, async (database) => {
    return await withReplicas(database.url, { count: replicaCount, config: schedulerConfig(mode) }, async (replicas) => {
      return await withSwarm(replicas, () =>
        withScheduler(database, mode, replicas, async (meanBatch) => {
          await insertPending(database.handle.db, PROFILE.backlog);
          const readyAt = await dbNow(database.handle.db);
          await waitAssigned(database.handle.db, 300_000);
          const figures = await drainFigures(database.handle.db, readyAt);
          return { ...figures, mode, replicas: replicaCount, meanBatchMs: await meanBatch() };
        }),
      );
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Cost per assignment against history

interface HistoryRun {
  finished: number;
  tableMb: number;
  claimMs: number;
  drain: DrainFigures;
  meanBatchMs: number;
}

/** EXPLAIN ANALYZE of the claim as the assigner issues it, in a transaction rolled back after. */
async function explainClaim(db: Db, limit: number): Promise<{ ms: number; buffers: number; plan: string }> {
  return await db
    .transaction()
    .execute(async (tx) => {
      // The same planner settings as claimPendingTasks.
      await sql`SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)`.execute(tx);
      const { rows } = await sql<{ 'QUERY PLAN': string }>`
        EXPLAIN (ANALYZE, BUFFERS)
        SELECT id, scope, priority, avoid_agent FROM dispatch_tasks
         WHERE status = 'pending' AND scope = ANY (${['bench']}::text[]) AND (not_before IS NULL OR not_before <= now())
         ORDER BY priority, created_at, id LIMIT ${limit} FOR UPDATE SKIP LOCKED`.execute(tx);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      const ms = Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1] ?? Number.NaN);
      const buffers = Number(/Buffers: shared hit=(\d+)/.exec(plan)?.[1] ?? Number.NaN);
      throw Object.assign(new Error('rollback'), { result: { ms, buffers, plan } });
    })
    .catch((error: unknown) => {
      const result = (error as { result?: { ms: number; buffers: number; plan: string } }).result;
      if (!result) throw error;
      return result;
    });
}

async function historyRun(finished: number): Promise<HistoryRun> {
  return await withBenchDatabase(`hist_${finished}`, async (database) => {
    const db = database.handle.db;
    log(`  inserting ${finished.toLocaleString('en-US')} finished tasks`);
    await insertFinished(db, finished);
    const size = await sql<{ mb: number }>`SELECT pg_total_relation_size('dispatch_tasks') / 1048576.0 AS mb`.execute(db);
    // No tick during the setup: the drain starts when this scenario asks for it.
    const config = { assignment: { batch_size: BATCH_SIZE, vacuum_interval_ms: VACUUM_INTERVAL_MS, tick_interval_ms: 3_600_000 } };
    return await withReplicas(database.url, { count: 1, config }, (replicas) =>
      withSwarm(replicas, async () => {
        // The backlog arrives without waking the assigner, so the claim can be examined first.
        await sql`ALTER TABLE dispatch_tasks DISABLE TRIGGER dispatch_tasks_wake_on_insert`.execute(db);
        await insertPending(db, PROFILE.historyBacklog);
        await sql`ALTER TABLE dispatch_tasks ENABLE TRIGGER dispatch_tasks_wake_on_insert`.execute(db);
        await sql`ANALYZE dispatch_tasks`.execute(db);
        const claim = await explainClaim(db, BATCH_SIZE);
        const readyAt = await dbNow(db);
        await sql`SELECT dispatch_request_assignment()`.execute(db);
        await waitAssigned(db, 300_000);
        return {
          finished,
          tableMb: Number(size.rows[0]!.mb),
          claimMs: claim.ms,
          drain: await drainFigures(db, readyAt),
          meanBatchMs: await meanBatchMs(replicas),
        };
      }),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Sustained

interface SustainedWindow {
  startS: number;
  assigned: number;
  completed: number;
  /** EXPLAIN ANALYZE of one claim at the end of the window: time and index/heap pages touched. */
  claimMs: number;
  claimBuffers: number;
  pendingIndexKb: number;
  deadTuples: number;
  vacuums: number;
  /** WAL written in the window, and the size of the tasks table (heap and indexes). */
  walMb: number;
  tasksMb: number;
}

interface SustainedRun {
  seconds: number;
  windows: SustainedWindow[];
}

/** Sustained runs give the agents limits so large that held work never caps assignment. */
const SUSTAINED_AGENT_LIMIT = 100_000;

async function sustainedRun(seconds: number, history: number): Promise<SustainedRun> {
  return await withBenchDatabase('sustained', async (database) => {
    const db = database.handle.db;
    if (history > 0) {
      log(`  inserting ${history.toLocaleString('en-US')} finished tasks first`);
      await insertFinished(db, history);
    }
    return await withReplicas(database.url, { count: 3, config: schedulerConfig('instant') }, async (replicas) => {
      const swarm = await registerAgents(
        replicas.map((r) => r.apiUrl),
        PROFILE.agents,
        SUSTAINED_AGENT_LIMIT,
      );
      try {
        const endAt = Date.now() + seconds * 1_000;
        // Feeder: keeps 10-30 k tasks pending (arrivals in chunks of 10 k), so the assigner, not
        // the arrivals, sets the pace.
        const feeder = (async () => {
          while (Date.now() < endAt) {
            const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status = 'pending'`.execute(db);
            if (rows[0]!.n < 20_000) await insertPending(db, 10_000);
            else await new Promise((r) => setTimeout(r, 100));
          }
        })();
        // Completer: the agents finishing their work (one agent per statement).
        let completed = 0;
        const completer = (async () => {
          while (Date.now() < endAt) {
            let round = 0;
            for (const agent of swarm.names) round += await completeAssigned(db, agent, 1_000);
            completed += round;
            if (round < 1_000) await new Promise((r) => setTimeout(r, 100));
          }
        })();
        const windows: SustainedWindow[] = [];
        // From the replicas' counters and the completer's own count: counting rows in the table
        // would read all of it every window, a load that grows with the table it measures.
        const counts = async () => ({
          assigned: await scrapeSum(replicas, 'dispatch_task_transitions_total', 'event="assigned"'),
          completed,
        });
        let previous = await counts();
        let lastLsn = (await sql<{ lsn: string }>`SELECT pg_current_wal_lsn()::text AS lsn`.execute(db)).rows[0]!.lsn;
        for (let startS = 0; startS + 10 <= seconds; startS += 10) {
          await new Promise((r) => setTimeout(r, Math.max(0, endAt - (seconds - startS - 10) * 1_000 - Date.now())));
          const now = await counts();
          const claim = await explainClaim(db, BATCH_SIZE);
          const table = await sql<{ kb: number; dead: number; vacuums: number }>`
            SELECT pg_relation_size('dispatch_tasks_pending_idx') / 1024 AS kb, n_dead_tup::int AS dead, (vacuum_count + autovacuum_count)::int AS vacuums
              FROM pg_stat_user_tables WHERE relname = 'dispatch_tasks'`.execute(db);
          const t = table.rows[0]!;
          const io = await sql<{ lsn: string; mb: number }>`
            SELECT pg_current_wal_lsn()::text AS lsn, pg_total_relation_size('dispatch_tasks') / 1048576.0 AS mb`.execute(db);
          const walMb = Number((await sql<{ mb: number }>`SELECT pg_wal_lsn_diff(${io.rows[0]!.lsn}::pg_lsn, ${lastLsn}::pg_lsn) / 1048576.0 AS mb`.execute(db)).rows[0]!.mb);
          lastLsn = io.rows[0]!.lsn;
          windows.push({
            startS,
            assigned: now.assigned - previous.assigned,
            completed: now.completed - previous.completed,
            claimMs: claim.ms,
            claimBuffers: claim.buffers,
            pendingIndexKb: Number(t.kb),
            deadTuples: t.dead,
            vacuums: t.vacuums,
            walMb,
            tasksMb: Number(io.rows[0]!.mb),
          });
          previous = now;
          const w = windows.at(-1)!;
          log(`  ${startS}-${startS + 10} s: ${fmtRate(w.assigned / 10)} assigned, ${fmtRate(w.completed / 10)} completed, claim ${fmtMs(w.claimMs)} (${w.claimBuffers} buffers), pending index ${w.pendingIndexKb} kB, ${w.deadTuples} dead tuples, ${w.vacuums} vacuums of dispatch_tasks, WAL ${w.walMb.toFixed(0)} MB, tasks table ${w.tasksMb.toFixed(0)} MB`);
        }
        await Promise.all([feeder, completer]);
        return { seconds, windows };
      } finally {
        await swarm.stop();
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP load

interface HttpRun {
  replicas: number;
  load: LoadResult;
  /** Tasks the measured run created (rows in the table), and how many were assigned when it stopped. */
  created: number;
  assignedAtEnd: number;
  /** Create-to-assigned of the measured run's tasks, once every one is assigned. */
  latency: LatencySummary;
}

// The warm-up creates as another requester, so only the measured run's tasks are counted.
const HTTP_REQUESTER = 'bench-http';
const HTTP_WARMUP_REQUESTER = 'bench-http-warmup';
// Room for everything the load can create (about 5 k/s at most), so agent capacity never holds work back.
const HTTP_AGENT_LIMIT = 10_000;

function createRequest(requester: string): RequestShape {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-agent-id': requester },
    body: JSON.stringify({ title: 'http load', scope: BENCH_SCOPE, priority: 3, context: { source: 'bench/assignment.ts' } }),
  };
}

async function httpRun(replicaCount: number): Promise<HttpRun> {
  return await withBenchDatabase(`http_${replicaCount}`, async (database) => {
    const db = database.handle.db;
    // One requester sends every create: the per-agent rate limiter must not be what is measured.
    const config = { ...schedulerConfig('instant'), server: { rate_limit_per_minute: 1_000_000_000 } };
    return await withReplicas(database.url, { count: replicaCount, config }, (replicas) =>
      withSwarm(
        replicas,
        async () => {
          const load = await loadPhase(replicas.map((r) => `${r.apiUrl}/api/v1/tasks`), createRequest(HTTP_REQUESTER), {
            connections: 50,
            warmupS: PROFILE.httpWarmupS,
            durationS: PROFILE.httpSeconds,
            warmup: createRequest(HTTP_WARMUP_REQUESTER),
          });
          const counts = async () =>
            (
              await sql<{ created: number; assigned: number }>`
                SELECT count(*)::int AS created, count(assigned_at)::int AS assigned
                  FROM dispatch_tasks WHERE requester = ${HTTP_REQUESTER}`.execute(db)
            ).rows[0]!;
          const atEnd = await counts();
          await waitAssigned(db, 120_000);
          // Counted again after the wait: creates in flight when autocannon stopped commit meanwhile.
          const { created } = await counts();
          const latency = await createToAssigned(db, HTTP_REQUESTER);
          return { replicas: replicaCount, load, created, assignedAtEnd: atEnd.assigned, latency };
        },
        HTTP_AGENT_LIMIT,
      ),
    );
  });
}

async function main(): Promise<void> {
  const server = await withBenchDatabase('info', async (d) => {
    const { rows } = await sql<{ version: string; autovacuum: string }>`
      SELECT current_setting('server_version') AS version, current_setting('autovacuum') AS autovacuum`.execute(d.handle.db);
    return rows[0]!;
  });
  log(
    `profile ${args.profile}; assignment.batch_size ${BATCH_SIZE}, vacuum_interval_ms ${VACUUM_INTERVAL_MS}; ` +
      `PostgreSQL ${server.version} (autovacuum ${server.autovacuum}); node ${process.version}`,
  );
  const report: string[] = [];

  if (wants('latency')) {
    const runs: LatencyRun[] = [];
    const LOAD_LABEL: Record<Load, string> = {
      idle: `idle: one task every ${PROFILE.idleGapMs} ms, over REST`,
      'rate-rest': `${PROFILE.rate} creates/s asked, over REST`,
      'rate-sql': `${PROFILE.rate} creates/s asked, the REST handler's INSERT run directly`,
    };
    for (const load of ['idle', 'rate-rest', 'rate-sql'] as const) {
      for (const mode of ['instant', 'tick'] as const) {
        log(`latency: ${LOAD_LABEL[load]}; ${MODE_LABEL[mode]}`);
        const run = await latencyRun(mode, load);
        log(`  p50 ${fmtMs(run.summary.p50)} p99 ${fmtMs(run.summary.p99)} max ${fmtMs(run.summary.max)} (n=${run.summary.n}, ${fmtRate(run.achievedRate)})`);
        runs.push(run);
      }
    }
    const rows = runs.map((r) => {
      const base = runs.find((b) => b.load === r.load && b.mode === 'tick')!;
      return [
        r.load === 'idle' ? `idle, 1 task / ${PROFILE.idleGapMs} ms (REST)` : `${fmtRate(r.achievedRate)} creates (${r.load === 'rate-rest' ? 'REST' : 'direct INSERT'})`,
        MODE_LABEL[r.mode],
        String(r.summary.n),
        fmtMs(r.summary.p50),
        fmtMs(r.summary.p99),
        fmtMs(r.summary.max),
        r.mode === 'tick' ? '1x' : `${ratio(r.summary.p50, base.summary.p50, 'lower')} / ${ratio(r.summary.p99, base.summary.p99, 'lower')}`,
      ];
    });
    report.push(
      '### Create-to-assigned latency (assigned_at - created_at), 1 replica',
      table(['load', 'scheduler', 'tasks', 'p50', 'p99', 'max', 'faster (p50 / p99)'], rows),
    );
  }

  if (wants('drain')) {
    const runs: DrainRun[] = [];
    for (const replicas of [1, 3]) {
      for (const mode of ['instant', 'tick'] as const) {
        log(`drain: ${PROFILE.backlog.toLocaleString('en-US')} pending, ${replicas} replica(s), ${MODE_LABEL[mode]}`);
        const run = await drainRun(mode, replicas);
        log(`  ${fmtRate((run.tasks * 1_000) / run.endToEndMs)} end to end, ${fmtRate((run.tasks * 1_000) / run.engineMs)} engine, batch ${fmtMs(run.meanBatchMs)}`);
        runs.push(run);
      }
    }
    const rows = runs.map((r) => {
      const base = runs.find((b) => b.replicas === r.replicas && b.mode === 'tick')!;
      const e2e = (r.tasks * 1_000) / r.endToEndMs;
      const baseE2e = (base.tasks * 1_000) / base.endToEndMs;
      return [
        String(r.replicas),
        MODE_LABEL[r.mode],
        r.tasks.toLocaleString('en-US'),
        fmtMs(r.endToEndMs),
        fmtRate(e2e),
        fmtRate((r.tasks * 1_000) / r.engineMs),
        fmtMs(r.meanBatchMs),
        r.mode === 'tick' ? '1x' : ratio(e2e, baseE2e, 'higher'),
      ];
    });
    report.push(
      `### Draining a ${PROFILE.backlog.toLocaleString('en-US')}-task backlog (${PROFILE.agents} agents x ${PROFILE.agentLimit} limit)`,
      table(['replicas', 'scheduler', 'assigned', 'commit -> last assigned', 'assignments/s', 'engine only (first -> last)', 'mean batch', 'vs tick'], rows),
    );
  }

  if (wants('history')) {
    const runs: HistoryRun[] = [];
    for (const finished of [PROFILE.historySmall, PROFILE.historyLarge]) {
      log(`history: ${finished.toLocaleString('en-US')} finished tasks, then a ${PROFILE.historyBacklog.toLocaleString('en-US')} backlog, 1 replica`);
      const run = await historyRun(finished);
      log(`  ${((run.drain.engineMs * 1_000) / run.drain.tasks).toFixed(1)} us/assignment, claim ${fmtMs(run.claimMs)}`);
      runs.push(run);
    }
    report.push(
      '### Cost per assignment against history (1 replica)',
      table(
        ['finished tasks in table', 'table + indexes', `claim of ${BATCH_SIZE} (EXPLAIN ANALYZE)`, 'mean batch', 'us per assignment', 'assignments/s'],
        runs.map((r) => [
          r.finished.toLocaleString('en-US'),
          `${r.tableMb.toFixed(0)} MB`,
          fmtMs(r.claimMs),
          fmtMs(r.meanBatchMs),
          ((r.drain.engineMs * 1_000) / r.drain.tasks).toFixed(0),
          fmtRate((r.drain.tasks * 1_000) / r.drain.engineMs),
        ]),
      ),
    );
  }

  if (wants('sustained')) {
    log(`sustained: ${PROFILE.sustainedSeconds} s, 3 replicas, 10-30 k tasks kept pending, agents completing in bulk`);
    const run = await sustainedRun(PROFILE.sustainedSeconds, Number(args['sustained-history'] ?? 0));
    // The first 30 s are warm-up: agents start empty, so nothing competes with assignment until
    // completions ramp up. Decay is judged on the steady state after it.
    const steady = run.windows.filter((w) => w.startS >= 30).map((w) => w.assigned / 10);
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const span = Math.max(1, Math.min(6, Math.floor(steady.length / 2)));
    const first = avg(steady.slice(0, span));
    const last = avg(steady.slice(-span));
    report.push(
      `### Sustained assignment, ${run.seconds} s, 3 replicas, per 10 s window`,
      table(
        ['window', 'assigned/s', 'completed/s', `claim of ${BATCH_SIZE}`, 'claim buffers', 'pending index', 'dead tuples', 'vacuums (tasks)', 'WAL', 'tasks table'],
        run.windows.map((w) => [
          `${w.startS}-${w.startS + 10} s`,
          fmtRate(w.assigned / 10),
          fmtRate(w.completed / 10),
          fmtMs(w.claimMs),
          String(w.claimBuffers),
          `${w.pendingIndexKb} kB`,
          w.deadTuples.toLocaleString('en-US'),
          String(w.vacuums),
          `${w.walMb.toFixed(0)} MB`,
          `${w.tasksMb.toFixed(0)} MB`,
        ]),
      ),
      `after a 30 s warm-up: first ${span * 10} s ${fmtRate(first)}, last ${span * 10} s ${fmtRate(last)} (${((last / first) * 100).toFixed(0)}%), ` +
        `lowest window ${fmtRate(Math.min(...steady))}; ` +
        (VACUUM_INTERVAL_MS > 0 ? `queue maintenance every ${VACUUM_INTERVAL_MS} ms` : 'queue maintenance off (and autovacuum off on this server: no VACUUM at all)'),
    );
  }

  if (wants('http')) {
    const runs: HttpRun[] = [];
    for (const replicas of [1, 3]) {
      log(`http: POST /api/v1/tasks, 50 connections over ${replicas} replica(s), ${PROFILE.httpSeconds} s after ${PROFILE.httpWarmupS} s warm-up, 50 agents assigning`);
      const run = await httpRun(replicas);
      log(`  ${fmtRate(run.load.requestsPerSecond)} p99 ${run.load.p99} ms; create -> assigned p99 ${fmtMs(run.latency.p99)}`);
      runs.push(run);
    }
    report.push(
      '### HTTP load: creates over REST while the same replicas assign them',
      table(
        ['replicas', 'creates/s', 'p50', 'p99', 'max', 'non-2xx', 'errors', 'tasks created', 'assigned when the load stopped', 'create -> assigned p50 / p99'],
        runs.map((r) => [
          String(r.replicas),
          fmtRate(r.load.requestsPerSecond),
          fmtMs(r.load.p50),
          fmtMs(r.load.p99),
          fmtMs(r.load.max),
          String(r.load.non2xx),
          String(r.load.errors),
          r.created.toLocaleString('en-US'),
          `${r.assignedAtEnd.toLocaleString('en-US')} (${((r.assignedAtEnd / Math.max(1, r.created)) * 100).toFixed(1)}%)`,
          `${fmtMs(r.latency.p50)} / ${fmtMs(r.latency.p99)}`,
        ]),
      ),
      'p50, p99 and max: of every 2xx response of the measured run, all replicas together (autocannon histograms merged); ' +
        'autocannon records whole milliseconds. Create -> assigned: assigned_at - created_at of the measured run\'s tasks.',
    );
    // Every 2xx answer is a task in the table (there can be a few more rows: creates still in flight
    // when autocannon stopped, their answers never read). Fewer rows means acknowledged creates were lost.
    const lost = runs.filter((r) => r.created < r.load.total - r.load.non2xx);
    if (runs.some((r) => r.load.non2xx > 0 || r.load.errors > 0) || lost.length > 0) {
      console.error(`http: some requests failed, or fewer tasks than 2xx answers (${lost.map((r) => `${r.replicas} replica(s)`).join(', ') || 'none lost'})`);
      process.exitCode = 1;
    }
  }

  if (wants('scale')) {
    const runs: ScaleRun[] = [];
    for (const rows of PROFILE.scaleRows) {
      log(`scale: ${rows.toLocaleString('en-US')} tasks (1% pending), one event each`);
      runs.push(await scaleRun(rows));
    }
    // A small table may rightly be read whole; from 100 k rows on (the largest size in smoke) it may not.
    const threshold = Math.min(100_000, Math.max(...PROFILE.scaleRows));
    const seqScans = runs.flatMap((r) => (r.rows >= threshold ? r.queries.filter((q) => q.plan.seqScan).map((q) => `${q.name} at ${r.rows}`) : []));
    report.push(
      '### Query cost against table size (EXPLAIN ANALYZE via auto_explain, warm, the last of 3 runs)',
      table(
        ['tasks in table', 'table + indexes', 'query', 'how the task tables were read', 'time', 'buffers'],
        runs.flatMap((r) =>
          r.queries.map((q) => [
            r.rows.toLocaleString('en-US'),
            `${r.tableMb.toFixed(0)} MB`,
            q.name,
            q.plan.access.join(', ') + (q.plan.seqScan && r.rows >= threshold ? ' **SEQ SCAN**' : ''),
            fmtMs(q.plan.ms),
            String(q.plan.buffers),
          ]),
        ),
      ),
      seqScans.length === 0 ? `no sequential scan of the task tables at ${threshold.toLocaleString('en-US')} rows or more` : `sequential scans: ${seqScans.join('; ')}`,
    );
    if (seqScans.length > 0) process.exitCode = 1;
  }

  console.log(`\n## Assignment benchmark (${args.profile} profile)\n`);
  console.log(report.join('\n\n'));
}

await main();
