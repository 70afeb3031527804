/**
 * `npm run bench` — assignment on a real PostgreSQL, with Dispatch replicas as separate processes.
 *
 *   npm run bench                         short profile (CI): about 8 minutes
 *   npm run bench -- --profile full       10-minute sustained run, 10 M finished tasks of history, larger samples
 *   npm run bench -- --profile smoke      every scenario at toy sizes (checks the bench runs)
 *   npm run bench -- --only latency,drain run some scenarios (yardsticks, latency, hops, drain, history, sustained, http, scale, connections, bulk, stream, scope-limits, dependencies, delayed, roundtrip)
 *   npm run bench -- --sustained-s 120    override the sustained run's length
 *   npm run bench -- --batch-size 1000    assignment.batch_size for the replicas
 *   npm run bench -- --parallel-batches 1 assignment.parallel_batches for the replicas
 *   npm run bench -- --vacuum-interval-ms 0   queue maintenance off (shows the decay without it)
 *   npm run bench -- --sustained-history 2000000  start the sustained run on that much history
 *   npm run bench -- --autovacuum on      the sustained run with the server's autovacuum on (ALTER SYSTEM, reset after)
 *   npm run bench -- --only roundtrip --paced-fraction 4   the round trip's paced phase at a quarter of its rate (default a half)
 *   npm run bench -- --only roundtrip --paced-rate 600     the paced phase at a fixed 600 tasks/s (to compare builds under one load)
 *
 * DISPATCH_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the
 * server; each scenario creates a fresh database on it and drops it afterwards. Everything runs on
 * 127.0.0.1. Scenarios:
 *
 *  - yardsticks: the libraries underneath, bare, on the same server (bench/reference/, one module
 *    each): a raw `SKIP LOCKED` claim, the bare Hono + INSERT route. graphile-worker's two run
 *    beside the figures they stand for (its batched no-op drain in the drain scenario, its
 *    addJob -> task start in the latency scenario). The closing summary prints each Dispatch
 *    figure beside its yardstick as a ratio, with the target from issue 17.
 *  - latency: create-to-assigned (assigned_at - created_at, stamped by the database) for tasks
 *    created over REST one at a time with gaps (idle; graphile-worker's addJob -> task start
 *    measured in two halves right before and right after it), and at ~1,000 creates/s.
 *  - hops: where idle create -> assigned time goes, one stamp per hop (insert commit, the
 *    assigners' NOTIFY, batch start, claim, batch commit, NATS delivery), on a scratch PostgreSQL with
 *    track_commit_timestamp on and a private nats-server.
 *  - drain: a 100 k pending backlog committed in one statement, assigned with 1 and 3 replicas
 *    (instant wake-up five times each, alternating, which goes first swapped each pair, and the
 *    medians compared; the v1 tick once), graphile-worker's batched no-op drain at the start of
 *    each pair as its yardstick.
 *  - history: cost per assignment with 10 k and 1 M finished tasks already in the table, both
 *    loaded first and their drains alternating.
 *  - sustained: 3 replicas assigning while new work keeps arriving and finished work is
 *    completed, reported per 10 s window, to show there is no decay.
 *  - http: POST /api/v1/tasks under autocannon (50 connections split over the replicas) with 1
 *    and with 3 replicas, agents registered so every task is also assigned meanwhile; latency
 *    percentiles from the replicas' histograms merged, create-to-assigned from the table.
 *  - bulk: POST /api/v1/tasks/requeue then /cancel of a 100 k failed backlog while 2 replicas
 *    assign other work created at 200/s; that work's create-to-assigned without and during.
 *  - delayed: run_at lateness (assigned_at - run_at, p50/p99) of 2,000 tasks due over 3 s, with
 *    an idle agent pool, 1 and 3 replicas; none may be assigned before its run_at.
 *  - scale: the claim and the API's reads on tables of 10 k, 100 k and 1 M tasks, through the
 *    product's own query functions, with the plan PostgreSQL chose (auto_explain); a sequential
 *    scan of the task tables at 100 k rows or more fails the run.
 *  - scope-limits: the drain with per-scope max_running and max_starts_per_minute set (high, so
 *    they cost but never bind) against without, with 1 and 3 replicas.
 *  - dependencies: dependency completed -> dependent assigned (p50/p99), one pair at a time over
 *    REST; one completion releasing 10,000 dependents (time until all are assigned).
 *
 *  - roundtrip: the whole agent round trip: 200 SDK agents (src/client runAgent) on their
 *    assignment streams, tasks created over REST and completed by the SDK; tasks/s flat out
 *    (against the bare route's INSERT rate), then create -> handler at half that rate.
 *
 *  - connections: the PostgreSQL connections one replica holds (per pool, idle and under load),
 *    then 10 replicas with the shipped pool settings on one server with max_connections = 100
 *    (the benchmark's if it has that setting, else a scratch one), serving and assigning.
 *
 * "v1-style 5 s tick": the database's instant wake-ups are switched off in that scenario's database
 * (the triggers that enqueue an assignment pass when work appears), the replicas' own tick is set
 * to an hour, and the benchmark runs one assignment pass every 5 s (bench/lib/v1-poller.ts): what
 * is pending at the tick is placed, then nothing until the next tick — v1's schedule. The pass is
 * Dispatch's own batched claim, not v1's per-task HTTP calls and row-by-row writes, so the
 * emulation flatters v1: the ratios are a lower bound of the difference.
 */
import { sql } from 'kysely';
import { withBenchDatabase } from './lib/database.js';
import { BATCH_SIZE, PARALLEL_BATCHES, VACUUM_INTERVAL_MS, args, log } from './scenarios/common.js';
import { summaryTable } from './lib/figures.js';
import { bulkActions } from './scenarios/bulk.js';
import { connections } from './scenarios/connections.js';
import { delayed } from './scenarios/delayed.js';
import { dependencies } from './scenarios/dependencies.js';
import { drain } from './scenarios/drain.js';
import { history } from './scenarios/history.js';
import { hops } from './scenarios/hops.js';
import { http } from './scenarios/http.js';
import { latency } from './scenarios/latency.js';
import { roundtrip } from './scenarios/roundtrip.js';
import { scale } from './scenarios/scale.js';
import { scopeLimits } from './scenarios/scope-limits.js';
import { stream } from './scenarios/stream.js';
import { sustained } from './scenarios/sustained.js';
import { yardsticks } from './scenarios/yardsticks.js';

/** In the order they run; `--only` picks among these names. */
const SCENARIOS = { yardsticks, latency, hops, drain, history, sustained, http, scale, connections, bulk: bulkActions, stream, 'scope-limits': scopeLimits, dependencies, delayed, roundtrip };

const only = args.only ? new Set(args.only.split(',')) : null;
const wants = (name: string) => !only || only.has(name);

async function main(): Promise<void> {
  const server = await withBenchDatabase('info', async (d) => {
    const { rows } = await sql<{ version: string; autovacuum: string }>`
      SELECT current_setting('server_version') AS version, current_setting('autovacuum') AS autovacuum`.execute(d.handle.db);
    return rows[0]!;
  });
  log(
    `profile ${args.profile}; assignment.batch_size ${BATCH_SIZE}, parallel_batches ${PARALLEL_BATCHES}, vacuum_interval_ms ${VACUUM_INTERVAL_MS}; ` +
      `PostgreSQL ${server.version} (autovacuum ${server.autovacuum}); node ${process.version}`,
  );
  const report: string[] = [];

  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    if (wants(name)) await scenario(report);
  }

  console.log(`\n## Assignment benchmark (${args.profile} profile)\n`);
  console.log(report.join('\n\n'));
  const summary = summaryTable();
  if (summary) {
    // Ratios, not absolute figures, are what travels: every yardstick ran on this server in this run.
    console.log(`\n### Summary: Dispatch against its yardsticks, same server, same run\n\n${summary}`);
  }
}

await main();
