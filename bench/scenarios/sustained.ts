import { sql } from 'kysely';
import { availableParallelism } from 'node:os';
import { cpuPerTask, sampleCpu } from '../lib/cpu.js';
import { admin, withBenchDatabase } from '../lib/database.js';
import { recordFigure } from '../lib/figures.js';
import { fmtSteal, fmtStealShare, meanSteal, stealMeter } from '../lib/steal.js';
import { scrapeSum, withReplicas } from '../lib/replicas.js';
import { fmtMs, fmtRate, table } from '../lib/stats.js';
import { completeAssigned, insertFinished, insertPending, ioPerTask, readIoCounters, registerAgents } from '../lib/workload.js';
import { BATCH_SIZE, PROFILE, VACUUM_INTERVAL_MS, args, explainClaim, log, schedulerConfig } from './common.js';

interface SustainedWindow {
  startS: number;
  assigned: number;
  completed: number;
  /** EXPLAIN ANALYZE of one claim at the end of the window: time and index/heap pages touched. */
  claimMs: number;
  claimBuffers: number;
  pendingIndexKb: number;
  deadTuples: number;
  vacuums: number;
  /** WAL written in the window, and the size of the tasks table (heap and indexes). */
  walMb: number;
  tasksMb: number;
  /**
   * Full-page images in the window's WAL (the first change to a page after a checkpoint writes
   * the whole page) and pages read from outside shared_buffers, per assignment: what grows when
   * the work stops fitting in the server's memory.
   */
  fpiPerTask: number;
  readsPerTask: number;
  /**
   * CPU milliseconds per assignment in the window, of the replicas, PostgreSQL (every process of
   * the server) and this process (feeder and completer), and the share of the cores they kept
   * busy: a rate that falls while the cost per task stays flat is the machine giving less, not
   * the queue costing more.
   */
  cpuMsPerTask: number;
  coresBusy: number;
  /** The share of the VM's CPU time the hypervisor took in the window (bench/lib/steal.ts). */
  steal: number | undefined;
}

interface SustainedRun {
  seconds: number;
  windows: SustainedWindow[];
}

/** Sustained runs give the agents limits so large that held work never caps assignment. */
const SUSTAINED_AGENT_LIMIT = 100_000;

async function sustainedRun(seconds: number, history: number): Promise<SustainedRun> {
  return await withBenchDatabase('sustained', async (database) => {
    const db = database.handle.db;
    if (history > 0) {
      log(`  inserting ${history.toLocaleString('en-US')} finished tasks first`);
      await insertFinished(db, history);
    }
    return await withReplicas(database.url, { count: 3, config: schedulerConfig('instant') }, async (replicas) => {
      const swarm = await registerAgents(
        replicas.map((r) => r.apiUrl),
        PROFILE.agents,
        SUSTAINED_AGENT_LIMIT,
      );
      try {
        const endAt = Date.now() + seconds * 1_000;
        // Feeder: keeps 10-30 k tasks pending (arrivals in chunks of 10 k), so the assigner, not
        // the arrivals, sets the pace.
        const feeder = (async () => {
          while (Date.now() < endAt) {
            const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status = 'pending'`.execute(db);
            if (rows[0]!.n < 20_000) await insertPending(db, 10_000);
            else await new Promise((r) => setTimeout(r, 100));
          }
        })();
        // Completer: the agents finishing their work (one agent per statement).
        let completed = 0;
        const completer = (async () => {
          while (Date.now() < endAt) {
            let round = 0;
            for (const agent of swarm.names) round += await completeAssigned(db, agent, 1_000);
            completed += round;
            if (round < 1_000) await new Promise((r) => setTimeout(r, 100));
          }
        })();
        const windows: SustainedWindow[] = [];
        // From the replicas' counters and the completer's own count: counting rows in the table
        // would read all of it every window, a load that grows with the table it measures.
        const counts = async () => ({
          assigned: await scrapeSum(replicas, 'dispatch_task_transitions_total', 'event="assigned"'),
          completed,
        });
        const { rows: server } = await sql<{ data_directory: string }>`SHOW data_directory`.execute(db);
        const cpu = () => sampleCpu(replicas.map((r) => r.pid), server[0]!.data_directory);
        let previous = await counts();
        let lastIo = await readIoCounters(db);
        let lastCpu = cpu();
        let windowStolen = stealMeter();
        for (let startS = 0; startS + 10 <= seconds; startS += 10) {
          await new Promise((r) => setTimeout(r, Math.max(0, endAt - (seconds - startS - 10) * 1_000 - Date.now())));
          const now = await counts();
          const nowCpu = cpu();
          const spent = cpuPerTask(lastCpu, nowCpu, Math.max(1, now.assigned - previous.assigned));
          lastCpu = nowCpu;
          const steal = windowStolen();
          windowStolen = stealMeter();
          const claim = await explainClaim(db, BATCH_SIZE);
          const table = await sql<{ kb: number; dead: number; vacuums: number }>`
            SELECT pg_relation_size('dispatch_tasks_pending_scope_rank_idx') / 1024 AS kb, n_dead_tup::int AS dead, (vacuum_count + autovacuum_count)::int AS vacuums
              FROM pg_stat_user_tables WHERE relname = 'dispatch_tasks'`.execute(db);
          const t = table.rows[0]!;
          const nowIo = await readIoCounters(db);
          const io = ioPerTask(lastIo, nowIo, now.assigned - previous.assigned);
          const walMb = (nowIo.walBytes - lastIo.walBytes) / 1048576;
          lastIo = nowIo;
          const tasksMb = Number((await sql<{ mb: number }>`SELECT pg_total_relation_size('dispatch_tasks') / 1048576.0 AS mb`.execute(db)).rows[0]!.mb);
          windows.push({
            startS,
            assigned: now.assigned - previous.assigned,
            completed: now.completed - previous.completed,
            claimMs: claim.ms,
            claimBuffers: claim.buffers,
            pendingIndexKb: Number(t.kb),
            deadTuples: t.dead,
            vacuums: t.vacuums,
            walMb,
            tasksMb,
            fpiPerTask: io.walFpi,
            readsPerTask: io.bufferReads,
            cpuMsPerTask: spent.total,
            coresBusy: (spent.total * (now.assigned - previous.assigned)) / 10_000 / availableParallelism(),
            steal,
          });
          previous = now;
          const w = windows.at(-1)!;
          log(`  ${startS}-${startS + 10} s: ${fmtRate(w.assigned / 10)} assigned, ${fmtRate(w.completed / 10)} completed, claim ${fmtMs(w.claimMs)} (${w.claimBuffers} buffers), pending index ${w.pendingIndexKb} kB, ${w.deadTuples} dead tuples, ${w.vacuums} vacuums of dispatch_tasks, WAL ${w.walMb.toFixed(0)} MB (${w.fpiPerTask.toFixed(2)} full pages, ${w.readsPerTask.toFixed(2)} reads a task), tasks table ${w.tasksMb.toFixed(0)} MB, CPU ${w.cpuMsPerTask.toFixed(2)} ms a task (${(w.coresBusy * 100).toFixed(0)}% of the cores, ${fmtSteal(w.steal)})`);
        }
        await Promise.all([feeder, completer]);
        return { seconds, windows };
      } finally {
        await swarm.stop();
      }
    });
  });
}

/**
 * `--autovacuum on`: production runs with autovacuum, this machine's server without it
 * (docs/BENCHMARKS.md, "Machine"). It is a server setting (a table can only opt out of it), so the
 * run turns it on for the whole server with ALTER SYSTEM and resets it afterwards, whatever
 * happens: the benchmark's server is loopback only (bench/lib/database.ts).
 */
async function withAutovacuum<T>(wanted: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (wanted === undefined || wanted === 'off') return await fn();
  if (wanted !== 'on') throw new Error(`--autovacuum takes on or off, not ${wanted}`);
  await admin('ALTER SYSTEM SET autovacuum = on');
  await admin('SELECT pg_reload_conf()');
  try {
    return await fn();
  } finally {
    await admin('ALTER SYSTEM RESET autovacuum');
    await admin('SELECT pg_reload_conf()');
  }
}

/** Sustained assignment while work keeps arriving and being completed, per 10 s window. */
export async function sustained(report: string[]): Promise<void> {
  const autovacuum = args.autovacuum === 'on' ? 'autovacuum on for the run' : "the server's autovacuum as configured";
  log(`sustained: ${PROFILE.sustainedSeconds} s, 3 replicas, 10-30 k tasks kept pending, agents completing in bulk, ${autovacuum}`);
  const run = await withAutovacuum(args.autovacuum, () => sustainedRun(PROFILE.sustainedSeconds, Number(args['sustained-history'] ?? 0)));
  // The first 30 s are warm-up: agents start empty, so nothing competes with assignment until
  // completions ramp up. Decay is judged on the steady state after it.
  const steadyWindows = run.windows.filter((w) => w.startS >= 30);
  const steady = steadyWindows.map((w) => w.assigned / 10);
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const span = Math.max(1, Math.min(6, Math.floor(steady.length / 2)));
  const first = avg(steady.slice(0, span));
  const last = avg(steady.slice(-span));
  // CPU a task over each span, weighted by the tasks of each window (total CPU / total tasks).
  const cpuOver = (windows: SustainedWindow[]) =>
    windows.reduce((sum, w) => sum + w.cpuMsPerTask * w.assigned, 0) / Math.max(1, windows.reduce((sum, w) => sum + w.assigned, 0));
  const firstCpu = cpuOver(steadyWindows.slice(0, span));
  const lastCpu = cpuOver(steadyWindows.slice(-span));
  // A run no longer than its warm-up (the smoke profile's 20 s) has no steady state to compare.
  if (steady.length > 0) {
    const [firstSteal, lastSteal] = [meanSteal(steadyWindows.slice(0, span).map((w) => w.steal)), meanSteal(steadyWindows.slice(-span).map((w) => w.steal))];
    recordFigure('sustainedFirst', first, firstSteal);
    recordFigure('sustainedLast', last, lastSteal);
    recordFigure('sustainedFirstCpu', firstCpu, firstSteal);
    recordFigure('sustainedLastCpu', lastCpu, lastSteal);
  }
  report.push(
    `### Sustained assignment, ${run.seconds} s, 3 replicas, per 10 s window, ${autovacuum}`,
    table(
      ['window', 'assigned/s', 'completed/s', `claim of ${BATCH_SIZE}`, 'claim buffers', 'pending index', 'dead tuples', 'vacuums (tasks)', 'WAL', 'full-page images a task', 'buffer reads a task', 'tasks table', 'CPU a task', 'cores busy', 'steal'],
      run.windows.map((w) => [
        `${w.startS}-${w.startS + 10} s`,
        fmtRate(w.assigned / 10),
        fmtRate(w.completed / 10),
        fmtMs(w.claimMs),
        String(w.claimBuffers),
        `${w.pendingIndexKb} kB`,
        w.deadTuples.toLocaleString('en-US'),
        String(w.vacuums),
        `${w.walMb.toFixed(0)} MB`,
        w.fpiPerTask.toFixed(2),
        w.readsPerTask.toFixed(2),
        `${w.tasksMb.toFixed(0)} MB`,
        `${w.cpuMsPerTask.toFixed(2)} ms`,
        `${(w.coresBusy * 100).toFixed(0)}%`,
        fmtStealShare(w.steal),
      ]),
    ),
    (steady.length > 0
      ? `after a 30 s warm-up: first ${span * 10} s ${fmtRate(first)}, last ${span * 10} s ${fmtRate(last)} (${((last / first) * 100).toFixed(0)}%), ` +
        `lowest window ${fmtRate(Math.min(...steady))}; CPU a task ${firstCpu.toFixed(2)} ms -> ${lastCpu.toFixed(2)} ms (replicas, PostgreSQL, this process); `
      : 'no steady state to compare: the run is no longer than its 30 s warm-up; ') +
      (VACUUM_INTERVAL_MS > 0 ? `queue maintenance every ${VACUUM_INTERVAL_MS} ms` : 'queue maintenance off'),
  );
}
