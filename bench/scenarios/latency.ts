import { sql } from 'kysely';
import { withBenchDatabase } from '../lib/database.js';
import { recordFigure } from '../lib/figures.js';
import { fmtSteal, meanSteal, withSteal } from '../lib/steal.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, fmtRate, ratio, summarize, table, type LatencySummary } from '../lib/stats.js';
import { graphileAddJobLatency } from '../reference/graphile-latency.js';
import { createPaced, createToAssigned, waitAssigned } from '../lib/workload.js';
import { MODE_LABEL, PROFILE, log, schedulerConfig, withScheduler, withSwarm, type Mode } from './common.js';

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
        // Warm-up (connections, plans, JIT of the replica's code), not measured. Under load, as
        // long as the bare route's and at the measured rate, so the paths a burst runs are
        // compiled too; idle, a short one (a heap grown by a burst brings its collections into
        // the idle samples, whose p99 is their third slowest).
        await (load === 'idle'
          ? createPaced(rest, { rate: 200, count: 200, maxInFlight: 4 })
          : createPaced(rest, { rate: PROFILE.rate, count: PROFILE.rate * PROFILE.httpWarmupS, maxInFlight: 128 }));
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

/**
 * The idle run's yardstick, graphile-worker's `addJob` -> task start, in two halves: one right
 * before Dispatch's idle run and one right after, their jobs' latencies taken together. Run once
 * at the start of the benchmark, minutes earlier, it met another machine: the same code's p99
 * came out at 0.65x to 1.70x of it in five runs (docs/BENCHMARKS.md, session 33).
 */
async function besideYardstick<T>(
  run: () => Promise<T>,
): Promise<{ result: T; steal: number | undefined; yardstick: LatencySummary; yardstickSteal: number | undefined }> {
  const half = Math.ceil(PROFILE.idleTasks / 2);
  log(`latency: yardstick, graphile-worker addJob -> task start, ${half} jobs one at a time, ${PROFILE.idleGapMs} ms apart, before and after`);
  const before = await withSteal(() => graphileAddJobLatency(half, PROFILE.idleGapMs));
  const { result, steal } = await withSteal(run);
  const after = await withSteal(() => graphileAddJobLatency(half, PROFILE.idleGapMs));
  const [first, second] = [summarize(before.result), summarize(after.result)];
  log(
    `  yardstick p50 / p99: ${fmtMs(first.p50)} / ${fmtMs(first.p99)} before (${fmtSteal(before.steal)}), ` +
      `${fmtMs(second.p50)} / ${fmtMs(second.p99)} after (${fmtSteal(after.steal)})`,
  );
  return { result, steal, yardstick: summarize([...before.result, ...after.result]), yardstickSteal: meanSteal([before.steal, after.steal]) };
}

/** Create-to-assigned latency, idle and at a steady rate, Dispatch against the v1-style tick. */
export async function latency(report: string[]): Promise<void> {
  const runs: LatencyRun[] = [];
  let yardstick: LatencySummary | undefined;
  const LOAD_LABEL: Record<Load, string> = {
    idle: `idle: one task every ${PROFILE.idleGapMs} ms, over REST`,
    'rate-rest': `${PROFILE.rate} creates/s asked, over REST`,
    'rate-sql': `${PROFILE.rate} creates/s asked, the REST handler's INSERT run directly`,
  };
  for (const load of ['idle', 'rate-rest', 'rate-sql'] as const) {
    for (const mode of ['instant', 'tick'] as const) {
      log(`latency: ${LOAD_LABEL[load]}; ${MODE_LABEL[mode]}`);
      let run: LatencyRun;
      let steal: number | undefined;
      if (mode === 'instant' && load === 'idle') {
        let yardstickSteal: number | undefined;
        ({ result: run, steal, yardstick, yardstickSteal } = await besideYardstick(() => latencyRun(mode, load)));
        recordFigure('gwLatencyP50', yardstick.p50, yardstickSteal);
        recordFigure('gwLatencyP99', yardstick.p99, yardstickSteal);
      } else {
        ({ result: run, steal } = await withSteal(() => latencyRun(mode, load)));
      }
      log(`  p50 ${fmtMs(run.summary.p50)} p99 ${fmtMs(run.summary.p99)} max ${fmtMs(run.summary.max)} (n=${run.summary.n}, ${fmtRate(run.achievedRate)}; ${fmtSteal(steal)})`);
      runs.push(run);
      if (mode === 'instant' && load === 'idle') {
        recordFigure('idleP50', run.summary.p50, steal);
        recordFigure('idleP99', run.summary.p99, steal);
      }
      if (mode === 'instant' && load === 'rate-rest') recordFigure('restRateP99', run.summary.p99, steal);
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
    ...(yardstick
      ? [
          `Yardstick for the idle row, run in two halves right before and right after it: graphile-worker addJob -> task start, one job at a time, ` +
            `p50 ${fmtMs(yardstick.p50)}, p99 ${fmtMs(yardstick.p99)}, max ${fmtMs(yardstick.max)} (n=${yardstick.n}).`,
        ]
      : []),
  );
}
