import { sql } from 'kysely';
import { withBenchDatabase } from '../lib/database.js';
import { loadPhase, type LoadResult, type RequestShape } from '../lib/http-load.js';
import { recordFigure } from '../lib/figures.js';
import { fmtSteal, withSteal } from '../lib/steal.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, fmtRate, table, type LatencySummary } from '../lib/stats.js';
import { BENCH_SCOPE, createToAssigned, waitAssigned } from '../lib/workload.js';
import { PROFILE, log, schedulerConfig, withSwarm } from './common.js';

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

/** POST /api/v1/tasks under autocannon with 1 and 3 replicas, assigning meanwhile. */
export async function http(report: string[]): Promise<void> {
  const runs: HttpRun[] = [];
  for (const replicas of [1, 3]) {
    log(`http: POST /api/v1/tasks, 50 connections over ${replicas} replica(s), ${PROFILE.httpSeconds} s after ${PROFILE.httpWarmupS} s warm-up, 50 agents assigning`);
    const { result: run, steal } = await withSteal(() => httpRun(replicas));
    log(`  ${fmtRate(run.load.requestsPerSecond)} p99 ${run.load.p99} ms; create -> assigned p99 ${fmtMs(run.latency.p99)}; ${fmtSteal(steal)}`);
    runs.push(run);
    if (replicas === 1) recordFigure('httpCreates1', run.load.requestsPerSecond, steal);
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
