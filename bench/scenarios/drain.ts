import { processCpuSeconds } from '../lib/cpu.js';
import { withBenchDatabase } from '../lib/database.js';
import { recordFigure } from '../lib/figures.js';
import { fmtSteal, meanSteal, withSteal } from '../lib/steal.js';
import { scrapeSum, withReplicas } from '../lib/replicas.js';
import { fmtMs, fmtRate, ratio, table } from '../lib/stats.js';
import { checkpointBeforeBacklog, dbNow, drainFigures, insertPending, waitAssigned, type DrainFigures } from '../lib/workload.js';
import { graphileBatchedThroughput } from '../reference/graphile-throughput.js';
import type { ReplicaProcess } from '../../test/helpers/replica-process.js';
import { MODE_LABEL, PROFILE, args, log, schedulerConfig, withScheduler, withSwarm, type Mode } from './common.js';

/**
 * Drains with instant wake-up, 1 and 3 replicas alternating, which goes first swapped each pair:
 * this VM's drain rate moves by a fifth from one minute to the next (session 19: 8,151 to
 * 10,933/s with 1 replica within four minutes), so one drain of each says little about 3
 * replicas against 1, and a fixed order gives one of them the same neighbour every time. Each
 * count's figure is its median, of five: with three, single drains a fifth apart left 3 replicas
 * against 1 anywhere from 0.86x to 1.56x in full runs of the same code (sessions 31 and 32); the
 * summary's 3 replicas against 1 is the median of the five pairs' own ratios (pairedRatios). For
 * the same reason graphile-worker's batched drain, the
 * 1-replica drain's yardstick, runs at the start of each pair and its median is the one
 * compared: taken once in the yardsticks scenario minutes earlier, it put the same code at 0.51x
 * to 0.73x of it in three runs of one afternoon (session 31).
 */
const INSTANT_PAIRS = args.profile === 'smoke' ? 1 : 5;

interface DrainRun extends DrainFigures {
  mode: Mode;
  replicas: number;
  meanBatchMs: number;
  /** Each replica's share of the drain: its assignment batches and the CPU its process used. */
  perReplica: { batches: number; cpuMs: number }[];
}

/** Each replica's assignment batches so far and its process's CPU, to see what the replicas that did not assign cost. */
async function replicaShares(replicas: readonly ReplicaProcess[]): Promise<{ batches: number; cpuMs: number }[]> {
  return await Promise.all(
    replicas.map(async (r) => ({ batches: await scrapeSum([r], 'dispatch_assignment_batch_seconds_count'), cpuMs: processCpuSeconds(r.pid) * 1_000 })),
  );
}

async function drainRun(mode: Mode, replicaCount: number): Promise<DrainRun> {
  return await withBenchDatabase(`drain_${mode}_${replicaCount}`, async (database) => {
    return await withReplicas(database.url, { count: replicaCount, config: schedulerConfig(mode) }, async (replicas) => {
      return await withSwarm(replicas, () =>
        withScheduler(database, mode, replicas, async (meanBatch) => {
          await checkpointBeforeBacklog(database.handle.db);
          const before = await replicaShares(replicas);
          await insertPending(database.handle.db, PROFILE.backlog);
          const readyAt = await dbNow(database.handle.db);
          await waitAssigned(database.handle.db, 300_000);
          const after = await replicaShares(replicas);
          const figures = await drainFigures(database.handle.db, readyAt);
          const perReplica = after.map((a, i) => ({ batches: a.batches - before[i]!.batches, cpuMs: a.cpuMs - before[i]!.cpuMs }));
          return { ...figures, mode, replicas: replicaCount, meanBatchMs: await meanBatch(), perReplica };
        }),
      );
    });
  });
}

const endToEndRate = (run: DrainRun) => (run.tasks * 1_000) / run.endToEndMs;

/**
 * 3 replicas against 1, pair by pair: the two drains of a pair run back to back, and this VM
 * speeds up or slows down by half within a scenario (session 35: 1 replica from 6,053 to
 * 13,543/s within three minutes), so the ratio of the two counts' medians compares drains of
 * different minutes, and moved with the order the pairs fell in, where each pair's own did not.
 */
function pairedRatios(runs: readonly DrainRun[]): number[] {
  const instant = runs.filter((r) => r.mode === 'instant');
  return Array.from({ length: instant.length / 2 }, (_, pair) => {
    const [a, b] = [instant[2 * pair]!, instant[2 * pair + 1]!];
    const [one, three] = a.replicas === 1 ? [a, b] : [b, a];
    return endToEndRate(three) / endToEndRate(one);
  });
}

const shares = (run: DrainRun) => run.perReplica.map((p) => `${p.batches} batches, ${fmtMs(p.cpuMs)}`).join(' / ');

/**
 * With one active assigner, the other replicas should cost the drain nothing: their CPU over each
 * 3-replica drain, as a share of one core through the drain, beside the assigning replica's.
 */
function othersCost(runs: readonly DrainRun[]): string {
  const threes = runs.filter((r) => r.mode === 'instant' && r.replicas === 3);
  return threes
    .map((r) => {
      const byBatches = [...r.perReplica].sort((a, b) => b.batches - a.batches);
      const core = (ms: number) => `${((ms / r.endToEndMs) * 100).toFixed(1)}%`;
      const others = byBatches.slice(1);
      return `${others.map((p) => `${p.batches} batches, ${core(p.cpuMs)}`).join(' and ')} of a core (the assigning one ${byBatches[0]!.batches} batches, ${core(byBatches[0]!.cpuMs)})`;
    })
    .join('; ');
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function loggedDrainRun(mode: Mode, replicas: number, steals: Map<DrainRun, number | undefined>): Promise<DrainRun> {
  log(`drain: ${PROFILE.backlog.toLocaleString('en-US')} pending, ${replicas} replica(s), ${MODE_LABEL[mode]}`);
  const { result: run, steal } = await withSteal(() => drainRun(mode, replicas));
  steals.set(run, steal);
  log(`  ${fmtRate(endToEndRate(run))} end to end, ${fmtRate((run.tasks * 1_000) / run.engineMs)} engine, batch ${fmtMs(run.meanBatchMs)}; ${shares(run)}; ${fmtSteal(steal)}`);
  return run;
}

/** Draining a backlog committed in one statement, with 1 and 3 replicas. */
export async function drain(report: string[]): Promise<void> {
  const runs: DrainRun[] = [];
  const steals = new Map<DrainRun, number | undefined>();
  const yardstickRates: number[] = [];
  const yardstickSteals: (number | undefined)[] = [];
  for (let pair = 0; pair < INSTANT_PAIRS; pair++) {
    log(`drain yardstick: graphile-worker, ${PROFILE.backlog.toLocaleString('en-US')} no-op jobs, batched`);
    const { result: yardstick, steal } = await withSteal(() => graphileBatchedThroughput(PROFILE.backlog));
    yardstickRates.push(yardstick.perSecond);
    yardstickSteals.push(steal);
    log(`  ${fmtRate(yardstick.perSecond)}; ${fmtSteal(steal)}`);
    for (const replicas of pair % 2 === 0 ? [1, 3] : [3, 1]) runs.push(await loggedDrainRun('instant', replicas, steals));
  }
  recordFigure('drainGwThroughput', median(yardstickRates), meanSteal(yardstickSteals));
  for (const replicas of [1, 3]) runs.push(await loggedDrainRun('tick', replicas, steals));
  const medians = new Map<number, number>();
  for (const replicas of [1, 3]) {
    const instant = runs.filter((r) => r.mode === 'instant' && r.replicas === replicas);
    medians.set(replicas, median(instant.map(endToEndRate)));
    recordFigure(replicas === 1 ? 'drain1' : 'drain3', medians.get(replicas)!, meanSteal(instant.map((r) => steals.get(r))));
  }
  const pairRatios = pairedRatios(runs);
  recordFigure('drain3vs1Paired', median(pairRatios));
  const rows = runs.map((r) => {
    const base = runs.find((b) => b.replicas === r.replicas && b.mode === 'tick')!;
    const e2e = endToEndRate(r);
    const baseE2e = endToEndRate(base);
    return [
      String(r.replicas),
      MODE_LABEL[r.mode],
      r.tasks.toLocaleString('en-US'),
      fmtMs(r.endToEndMs),
      fmtRate(e2e),
      fmtRate((r.tasks * 1_000) / r.engineMs),
      fmtMs(r.meanBatchMs),
      r.mode === 'tick' ? '1x' : ratio(e2e, baseE2e, 'higher'),
      shares(r),
    ];
  });
  report.push(
    `### Draining a ${PROFILE.backlog.toLocaleString('en-US')}-task backlog (${PROFILE.agents} agents x ${PROFILE.agentLimit} limit)`,
    table(['replicas', 'scheduler', 'assigned', 'commit -> last assigned', 'assignments/s', 'engine only (first -> last)', 'mean batch', 'vs tick', 'each replica: batches, CPU'], rows),
    `Instant wake-up, ${INSTANT_PAIRS} drain(s) of each, 1 and 3 replicas alternating; the medians: ` +
      `1 replica ${fmtRate(medians.get(1)!)}, 3 replicas ${fmtRate(medians.get(3)!)} (${ratio(medians.get(3)!, medians.get(1)!, 'higher')}); ` +
      `3 replicas against 1 pair by pair ${pairRatios.map((r) => `${r.toFixed(2)}x`).join(' / ')}, the median the summary uses ${median(pairRatios).toFixed(2)}x.`,
    `What the replicas that assigned least cost, in the 3-replica drains (the replica with the most batches left out): ${othersCost(runs)}.`,
    `graphile-worker's batched no-op drain at the start of each pair: ${yardstickRates.map(fmtRate).join(' / ')}, ` +
      `median ${fmtRate(median(yardstickRates))} (1 replica: ${ratio(medians.get(1)!, median(yardstickRates), 'higher')}).`,
  );
}
