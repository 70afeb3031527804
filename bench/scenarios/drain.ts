import { withBenchDatabase } from '../lib/database.js';
import { recordFigure } from '../lib/figures.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, fmtRate, ratio, table } from '../lib/stats.js';
import { dbNow, drainFigures, insertPending, waitAssigned, type DrainFigures } from '../lib/workload.js';
import { MODE_LABEL, PROFILE, log, schedulerConfig, withScheduler, withSwarm, type Mode } from './common.js';

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

/** Draining a backlog committed in one statement, with 1 and 3 replicas. */
export async function drain(report: string[]): Promise<void> {
  const runs: DrainRun[] = [];
  for (const replicas of [1, 3]) {
    for (const mode of ['instant', 'tick'] as const) {
      log(`drain: ${PROFILE.backlog.toLocaleString('en-US')} pending, ${replicas} replica(s), ${MODE_LABEL[mode]}`);
      const run = await drainRun(mode, replicas);
      log(`  ${fmtRate((run.tasks * 1_000) / run.endToEndMs)} end to end, ${fmtRate((run.tasks * 1_000) / run.engineMs)} engine, batch ${fmtMs(run.meanBatchMs)}`);
      runs.push(run);
      if (mode === 'instant') recordFigure(replicas === 1 ? 'drain1' : 'drain3', (run.tasks * 1_000) / run.endToEndMs);
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
