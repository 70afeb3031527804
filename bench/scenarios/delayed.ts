import { sql } from 'kysely';
import { newId } from '../../src/db/ids.js';
import { insertTasks, type NewTask } from '../../src/tasks/task.queries.js';
import { withBenchDatabase } from '../lib/database.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, summarize, table, type LatencySummary } from '../lib/stats.js';
import { benchTask, dbNow, waitAssigned } from '../lib/workload.js';
import { PROFILE, log, schedulerConfig, withSwarm } from './common.js';

/** Delayed tasks created, and the window their run_at times are spread over. */
const TASKS = PROFILE.delayedTasks;
const SPREAD_MS = 3_000;
/** Margin between the last creation and the first due time. */
const LEAD_MS = 3_000;

const newTask = (i: number): NewTask & { id: string } => ({ ...benchTask('bench-delayed', `delayed ${i}`), id: newId() });

interface DelayedRun {
  replicas: number;
  lateness: LatencySummary;
  early: number;
}

/**
 * Lateness of delayed tasks: `TASKS` tasks with run_at spread evenly over `SPREAD_MS`, every one
 * created before the first falls due, an idle agent pool with room for all
 * of them. Lateness is assigned_at - run_at, both stamped by the database; a task assigned before
 * its run_at would be counted as early (there must be none).
 */
async function delayedRun(count: number): Promise<DelayedRun> {
  return await withBenchDatabase(`delayed_${count}`, async (database) => {
    const db = database.handle.db;
    return await withReplicas(database.url, { count, config: schedulerConfig('instant') }, (replicas) =>
      withSwarm(replicas, async () => {
        // Inserted by the create path's own statement (insertTasks, 500 per statement as the
        // group commit does under load), so the figure is the wake-up's, not the API's
        // throughput on a busy machine; every task is in before the first one falls due.
        const start = (await dbNow(db)).getTime() + LEAD_MS;
        const tasks = Array.from({ length: TASKS }, (_, i) => ({
          ...newTask(i),
          run_at: new Date(start + Math.floor((i * SPREAD_MS) / TASKS)).toISOString(),
        }));
        // Shuffled, so each replica keeps being told of due times earlier than the one it armed.
        tasks.sort(() => Math.random() - 0.5);
        for (let i = 0; i < tasks.length; i += 500) await insertTasks(db, tasks.slice(i, i + 500));
        const created = (await dbNow(db)).getTime();
        if (created > start) log(`  warning: creation ended ${created - start} ms after the first run_at`);
        await waitAssigned(db, 60_000 + SPREAD_MS);
        const { rows } = await sql<{ ms: number }>`
          SELECT extract(epoch FROM assigned_at - run_at) * 1000 AS ms FROM dispatch_tasks WHERE requester = 'bench-delayed'`.execute(db);
        const values = rows.map((r) => Number(r.ms));
        return { replicas: count, lateness: summarize(values), early: values.filter((ms) => ms < 0).length };
      }, PROFILE.agentLimit),
    );
  });
}

/** run_at lateness (assigned_at - run_at) with 1 and 3 replicas. */
export async function delayed(report: string[]): Promise<void> {
  const runs: DelayedRun[] = [];
  for (const count of [1, 3]) {
    log(`delayed: ${TASKS} tasks due over ${SPREAD_MS} ms, ${count} replica(s), idle agents`);
    const run = await delayedRun(count);
    log(`  lateness p50 ${fmtMs(run.lateness.p50)} p99 ${fmtMs(run.lateness.p99)} max ${fmtMs(run.lateness.max)} (n=${run.lateness.n}, early ${run.early})`);
    runs.push(run);
  }
  report.push(
    `### Delayed tasks: lateness after run_at (assigned_at - run_at), ${TASKS} tasks due over ${SPREAD_MS / 1_000} s, idle agents`,
    table(
      ['replicas', 'tasks', 'p50', 'p99', 'max', 'assigned early'],
      runs.map((r) => [String(r.replicas), String(r.lateness.n), fmtMs(r.lateness.p50), fmtMs(r.lateness.p99), fmtMs(r.lateness.max), String(r.early)]),
    ),
  );
}
