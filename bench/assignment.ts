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
import { withBenchDatabase } from './lib/database.js';
import { BATCH_SIZE, VACUUM_INTERVAL_MS, args, log } from './scenarios/common.js';
import { drain } from './scenarios/drain.js';
import { history } from './scenarios/history.js';
import { http } from './scenarios/http.js';
import { latency } from './scenarios/latency.js';
import { scale } from './scenarios/scale.js';
import { sustained } from './scenarios/sustained.js';

/** In the order they run; `--only` picks among these names. */
const SCENARIOS = { latency, drain, history, sustained, http, scale };

const only = args.only ? new Set(args.only.split(',')) : null;
const wants = (name: string) => !only || only.has(name);

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

  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    if (wants(name)) await scenario(report);
  }

  console.log(`\n## Assignment benchmark (${args.profile} profile)\n`);
  console.log(report.join('\n\n'));
}

await main();
