import { sql } from 'kysely';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { claimStatement } from '../../src/assignment/assignment.queries.js';
import type { DispatchConfigInput } from '../../src/config/config.js';
import { parseConfig } from '../../src/config/load.js';
import type { Db } from '../../src/db/database.js';
import type { ReplicaProcess } from '../../test/helpers/replica-process.js';
import type { BenchDatabase } from '../lib/database.js';
import { scrapeSum } from '../lib/replicas.js';
import { V1Poller } from '../lib/v1-poller.js';
import { BENCH_SCOPE, disableInstantWake, registerAgents } from '../lib/workload.js';

/** What every scenario shares: the command line, the profile's sizes, the scheduler modes, the swarm. */

export const { values: args } = parseArgs({
  options: {
    profile: { type: 'string', default: process.env.BENCH_PROFILE ?? 'short' },
    only: { type: 'string' },
    'sustained-s': { type: 'string' },
    'batch-size': { type: 'string' },
    'parallel-batches': { type: 'string' },
    'vacuum-interval-ms': { type: 'string' },
    'sustained-history': { type: 'string' },
    /** on: the sustained scenario runs with the server's autovacuum on (production's default), off: as the server has it. */
    autovacuum: { type: 'string' },
    /** The round trip's paced phase runs at its flat-out rate divided by this (issue 17's target is at half: 2). */
    'paced-fraction': { type: 'string' },
    /** The round trip's paced phase at this many tasks/s instead (to compare builds under one load). */
    'paced-rate': { type: 'string' },
  },
});

const FULL = args.profile === 'full';
// smoke: a quick check that every scenario runs (numbers too small to quote).
const SMOKE = args.profile === 'smoke';
export const PROFILE = {
  // 1,000 in the short profile too: with 300, a p99 was the third slowest task, and it moved by a half between runs.
  idleTasks: SMOKE ? 40 : 1_000,
  idleGapMs: 50,
  rate: 1_000,
  rateSeconds: FULL ? 30 : SMOKE ? 2 : 10,
  backlog: SMOKE ? 5_000 : 100_000,
  historySmall: SMOKE ? 1_000 : 10_000,
  // Issue 17: the full profile shows the cost flat up to 10 M finished tasks.
  historyLarge: FULL ? 10_000_000 : SMOKE ? 20_000 : 1_000_000,
  historyBacklog: SMOKE ? 2_000 : 20_000,
  // Two minutes in the short profile: after the 30 s warm-up its first and last 40 s are compared
  // (one minute left one 10 s window of each, which moved with the machine by a fifth).
  sustainedSeconds: Number(args['sustained-s'] ?? (FULL ? 600 : SMOKE ? 20 : 120)),
  agents: 50,
  agentLimit: 2_000,
  httpWarmupS: SMOKE ? 1 : 2,
  httpSeconds: FULL ? 30 : SMOKE ? 2 : 10,
  scaleRows: SMOKE ? [1_000, 5_000, 20_000] : [10_000, 100_000, 1_000_000],
  delayedTasks: SMOKE ? 200 : 2_000,
};
/** assignment.vacuum_interval_ms for the replicas: the shipped default unless given (0 turns it off). */
export const VACUUM_INTERVAL_MS = Number(args['vacuum-interval-ms'] ?? parseConfig({}).assignment.vacuum_interval_ms);
/** assignment.batch_size: the shipped default unless --batch-size says otherwise. */
export const BATCH_SIZE = Number(args['batch-size'] ?? parseConfig({}).assignment.batch_size);
/** assignment.parallel_batches: the shipped default unless --parallel-batches says otherwise. */
export const PARALLEL_BATCHES = Number(args['parallel-batches'] ?? parseConfig({}).assignment.parallel_batches);

export type Mode = 'instant' | 'tick';
export const MODE_LABEL: Record<Mode, string> = { instant: 'Dispatch (instant wake)', tick: 'v1-style 5 s tick' };

export function log(message: string): void {
  // The load average says how busy the machine was (other work skews every figure).
  const load = loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`[${new Date().toISOString().slice(11, 19)} load ${load}] ${message}`);
}

const V1_TICK_MS = 5_000;

/** Replica config for a mode: in v1 mode the replicas never assign by themselves. */
export function schedulerConfig(mode: Mode): DispatchConfigInput {
  return {
    assignment: { batch_size: BATCH_SIZE, parallel_batches: PARALLEL_BATCHES, vacuum_interval_ms: VACUUM_INTERVAL_MS, ...(mode === 'tick' ? { tick_interval_ms: 3_600_000 } : {}) },
  };
}

/**
 * Runs `fn` with the scheduler of `mode` in place: Dispatch's own, or the v1 emulation. `fn` gets
 * the mean assignment transaction time of whichever did the assigning.
 */
export async function withScheduler<T>(
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
export async function meanBatchMs(replicas: readonly ReplicaProcess[]): Promise<number> {
  const sum = await scrapeSum(replicas, 'dispatch_assignment_batch_seconds_sum');
  const count = await scrapeSum(replicas, 'dispatch_assignment_batch_seconds_count');
  return count > 0 ? (sum / count) * 1_000 : Number.NaN;
}

/** The simulated agents (registered over REST, heartbeating) for the length of `fn`. */
export async function withSwarm<T>(
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

/** EXPLAIN ANALYZE of the claim as the assigner issues it, in a transaction rolled back after. */
export async function explainClaim(db: Db, limit: number): Promise<{ ms: number; buffers: number; plan: string }> {
  return await db
    .transaction()
    .execute(async (tx) => {
      // The product's claim of the benchmark's scope (a function call: its time and buffers are the
      // claim's). The function plans its statement on its first call in a session, as the
      // assigner's first batch does: called once before, so that the figure is the claim's run.
      await claimStatement([BENCH_SCOPE], limit, 0, false).execute(tx);
      const { rows } = await sql<{ 'QUERY PLAN': string }>`
        EXPLAIN (ANALYZE, BUFFERS) ${claimStatement([BENCH_SCOPE], limit, 0, false)}`.execute(tx);
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
