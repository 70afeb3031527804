import { sql } from 'kysely';
import { withBenchDatabase } from '../lib/database.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, fmtRate, table } from '../lib/stats.js';
import { dbNow, drainFigures, insertFinished, insertPending, waitAssigned, type DrainFigures } from '../lib/workload.js';
import { BATCH_SIZE, PROFILE, VACUUM_INTERVAL_MS, explainClaim, log, meanBatchMs, withSwarm } from './common.js';

interface HistoryRun {
  finished: number;
  tableMb: number;
  claimMs: number;
  drain: DrainFigures;
  meanBatchMs: number;
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

/** Cost per assignment with a small and a large history of finished tasks in the table. */
export async function history(report: string[]): Promise<void> {
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
