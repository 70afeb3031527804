import { sql } from 'kysely';
import { withBenchDatabase } from '../lib/database.js';
import { recordFigure } from '../lib/figures.js';
import { fmtSteal, meanSteal, withSteal } from '../lib/steal.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, fmtRate, table } from '../lib/stats.js';
import { checkpointBeforeBacklog, dbNow, drainFigures, insertFinished, insertPending, waitAssigned, walBytesSince, walPosition, type DrainFigures } from '../lib/workload.js';
import { BATCH_SIZE, PROFILE, VACUUM_INTERVAL_MS, args, explainClaim, log, meanBatchMs, withSwarm } from './common.js';

interface HistoryRun {
  finished: number;
  tableMb: number;
  claimMs: number;
  /** Each backlog's drain, in the order they ran, with the WAL it wrote a task (the whole server's: the other history's replica idles meanwhile). */
  drains: (DrainFigures & { walBytesPerTask: number })[];
  meanBatchMs: number;
}

/**
 * Backlogs drained in turn on each history: one drain of 20 k tasks lasts a second or two, and
 * single drains of the same code on the same table were measured 51 and 61 us an assignment
 * apart; the median is what the two histories are compared on. Five, not three: on a noisy
 * morning two of three drains of one history came out at 111 and 117 us against 81, and the
 * ratio of medians of three swung from 0.43x to 1.42x between runs of the same code.
 */
const DRAINS = args.profile === 'smoke' ? 1 : 5;

const usPerAssignment = (d: DrainFigures) => (d.engineMs * 1_000) / d.tasks;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** One history, loaded and served by its own replica, ready to drain backlogs on demand. */
interface History {
  run: HistoryRun;
  drainBacklog(): Promise<void>;
  finish(): Promise<HistoryRun>;
}

async function withHistory<T>(finished: number, fn: (history: History) => Promise<T>): Promise<T> {
  return await withBenchDatabase(`hist_${finished}`, async (database) => {
    const db = database.handle.db;
    log(`history: inserting ${finished.toLocaleString('en-US')} finished tasks`);
    await insertFinished(db, finished);
    const size = await sql<{ mb: number }>`SELECT pg_total_relation_size('dispatch_tasks') / 1048576.0 AS mb`.execute(db);
    // No tick during the setup: the drain starts when this scenario asks for it.
    const config = { assignment: { batch_size: BATCH_SIZE, vacuum_interval_ms: VACUUM_INTERVAL_MS, tick_interval_ms: 3_600_000 } };
    return await withReplicas(database.url, { count: 1, config }, (replicas) =>
      withSwarm(replicas, async () => {
        const run: HistoryRun = { finished, tableMb: Number(size.rows[0]!.mb), claimMs: 0, drains: [], meanBatchMs: 0 };
        const drainBacklog = async () => {
          const before = await dbNow(db);
          // The backlog arrives without waking the assigner, so the claim can be examined first.
          await checkpointBeforeBacklog(db);
          await sql`ALTER TABLE dispatch_tasks DISABLE TRIGGER dispatch_tasks_wake_on_insert`.execute(db);
          await insertPending(db, PROFILE.historyBacklog);
          await sql`ALTER TABLE dispatch_tasks ENABLE TRIGGER dispatch_tasks_wake_on_insert`.execute(db);
          await sql`ANALYZE dispatch_tasks`.execute(db);
          if (run.drains.length === 0) run.claimMs = (await explainClaim(db, BATCH_SIZE)).ms;
          const readyAt = await dbNow(db);
          const wal = await walPosition(db);
          await sql`SELECT dispatch_request_assignment()`.execute(db);
          await waitAssigned(db, 300_000);
          const figures = await drainFigures(db, readyAt, before);
          const walBytesPerTask = (await walBytesSince(db, wal)) / figures.tasks;
          run.drains.push({ ...figures, walBytesPerTask });
          log(`  ${finished.toLocaleString('en-US')} finished, drain ${run.drains.length} of ${DRAINS}: ${usPerAssignment(figures).toFixed(1)} us/assignment, ${walBytesPerTask.toFixed(0)} bytes of WAL a task`);
        };
        const finish = async () => ({ ...run, meanBatchMs: await meanBatchMs(replicas) });
        return await fn({ run, drainBacklog, finish });
      }),
    );
  });
}

/** Cost per assignment with a small and a large history of finished tasks in the table. */
export async function history(report: string[]): Promise<void> {
  // Both histories are loaded first and their drains alternate, the order swapped each round: drains
  // of one history a minute apart differ by more than the target's 5% on this machine, and the large
  // history, measured after the small one and after its own bulk load, met a later and busier
  // machine (1 M at 0.84x to 0.91x of 10 k in session 31's three runs, while nothing the database
  // does for a batch grows with history, session 28).
  const steals: [(number | undefined)[], (number | undefined)[]] = [[], []];
  const runs = await withHistory(PROFILE.historySmall, (small) =>
    withHistory(PROFILE.historyLarge, async (large) => {
      log(`history: ${DRAINS} backlogs of ${PROFILE.historyBacklog.toLocaleString('en-US')} on each, alternating, 1 replica each`);
      for (let i = 0; i < DRAINS; i++) {
        for (const h of i % 2 === 0 ? [small, large] : [large, small]) steals[h === small ? 0 : 1].push((await withSteal(() => h.drainBacklog())).steal);
      }
      return [await small.finish(), await large.finish()];
    }),
  );
  const [smallSteal, largeSteal] = steals.map(meanSteal);
  runs.forEach((run, i) =>
    log(
      `  ${run.finished.toLocaleString('en-US')} finished: median ${median(run.drains.map(usPerAssignment)).toFixed(1)} us/assignment, ` +
        `claim ${fmtMs(run.claimMs)}; ${fmtSteal(i === 0 ? smallSteal : largeSteal)} through its drains`,
    ),
  );
  const [small, large] = runs.map((r) => median(r.drains.map(usPerAssignment)));
  recordFigure('historySmall', 1_000_000 / small!, smallSteal);
  recordFigure('historyLarge', 1_000_000 / large!, largeSteal);
  report.push(
    '### Cost per assignment against history (1 replica)',
    table(
      ['finished tasks in table', 'table + indexes', `claim of ${BATCH_SIZE} (EXPLAIN ANALYZE)`, 'mean batch', `us per assignment (median of ${DRAINS})`, 'each drain', 'assignments/s (median)', 'WAL a task, each drain'],
      runs.map((r) => {
        const us = median(r.drains.map(usPerAssignment));
        return [
          r.finished.toLocaleString('en-US'),
          `${r.tableMb.toFixed(0)} MB`,
          fmtMs(r.claimMs),
          fmtMs(r.meanBatchMs),
          us.toFixed(0),
          r.drains.map((d) => usPerAssignment(d).toFixed(0)).join(' / '),
          fmtRate(1_000_000 / us),
          r.drains.map((d) => `${d.walBytesPerTask.toFixed(0)} B`).join(' / '),
        ];
      }),
    ),
    `large history against small: ${(small! / large!).toFixed(2)}x the rate (target: flat)`,
  );
}
