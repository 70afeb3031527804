import { sql } from 'kysely';
import { runAgent, type AgentRunner } from '../../src/client/index.js';
import type { Db } from '../../src/db/database.js';
import { availableParallelism } from 'node:os';
import { cpuPerTask, sampleCpu } from '../lib/cpu.js';
import { withCommitStampedServer } from '../lib/database.js';
import { costliestStatements, resetStatementStats } from '../lib/statement-stats.js';
import { recordFigure } from '../lib/figures.js';
import { fmtSteal, fmtStealShare, meanSteal, stealMeter, withSteal } from '../lib/steal.js';
import { withReplicas } from '../lib/replicas.js';
import { parseExposition } from '../../test/helpers/metrics-text.js';
import type { ReplicaProcess } from '../../test/helpers/replica-process.js';
import { fmtMs, fmtRate, summarize, table } from '../lib/stats.js';
import { BENCH_SCOPE, createPaced, waitUntil } from '../lib/workload.js';
import { bareRouteRate } from '../reference/bare-insert.js';
import { PROFILE, args, log } from './common.js';

/**
 * The whole agent round trip (issue 17): SDK agents (src/client `runAgent`, in this process)
 * hold their assignment streams on one replica; tasks are created over REST, delivered on the
 * streams, and completed over REST by the SDK with the handler's return value. First as fast as
 * the creators go (tasks/s from the first create to the last completion), then paced at half that
 * rate: create (created_at, the database's stamp) -> the handler holding the task (stamped here,
 * same host clock), and from the assignment's commit (a scratch PostgreSQL with
 * track_commit_timestamp on, as the stream scenario).
 */

const SMOKE = args.profile === 'smoke';
const AGENTS = SMOKE ? 20 : 200;
const FLAT_OUT_TASKS = SMOKE ? 300 : 6_000;
/** Tasks run through the whole round trip before it is measured, as the bare route warms up before its figure. */
const WARMUP_TASKS = SMOKE ? 100 : 2_000;
const PACED_SECONDS = SMOKE ? 2 : 10;
/**
 * The paced phase's rate as a fraction of the flat-out one: 2 by default (issue 17's target). At
 * other fractions it shows how busy the machine stays as the rate falls: every batch has a cost
 * its tasks share, so at a quarter of the rate the cores were about as busy as at half
 * (docs/BENCHMARKS.md, session 28).
 */
const PACED_FRACTION = Number(args['paced-fraction'] ?? 2);
/**
 * A fixed rate for the paced phase instead (tasks/s): two builds compared in alternating runs then
 * meet the same load, where half of each run's own flat-out rate differed by up to a third
 * between neighbouring runs (docs/BENCHMARKS.md, session 31). Not issue 17's figure.
 */
const PACED_RATE = args['paced-rate'] === undefined ? undefined : Number(args['paced-rate']);
const REQUESTER = 'bench-roundtrip';
/** Rows of the statement-cost table: the replica's hot statements, and the benchmark's own polling below them. */
const STATEMENTS_SHOWN = 8;
const wallNow = () => performance.timeOrigin + performance.now();
const BATCH_STEPS = ['agents', 'claim', 'place', 'write', 'commit'] as const;
const STEP_MEANING: Record<(typeof BATCH_STEPS)[number], string> = {
  agents: 'BEGIN and the first statement (`lockAgentsAndClaim`: the agents locked, the tasks claimed), one round trip',
  claim: 'what controlled scopes add to the claim (`claimUnderScopeControls`; none here)',
  place: 'the decisions, in the replica',
  write: 'the write (`applyAssignments`) and COMMIT, one round trip',
  commit: 'what follows (a COMMIT of its own after scope limits are settled)',
};

/** The replica's batch-step histograms so far (dispatch_assignment_batch_step_seconds): seconds and batches per step. */
async function batchSteps(replica: ReplicaProcess): Promise<Map<string, { s: number; n: number }>> {
  const samples = parseExposition(await (await fetch(`${replica.opsUrl}/metrics`)).text());
  const of = (name: string, step: string) => samples.find((s) => s.name === name && s.labels.step === step)?.value ?? 0;
  return new Map(
    BATCH_STEPS.map((step) => [step, { s: of('dispatch_assignment_batch_step_seconds_sum', step), n: of('dispatch_assignment_batch_step_seconds_count', step) }]),
  );
}

async function completedCount(db: Db): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status = 'completed'`.execute(db);
  return rows[0]!.n;
}

/**
 * Whether every task created so far has ended: looked for, not counted, since the probe runs every
 * 20 ms on the database whose CPU per task is measured (counting the completed ones cost it about
 * 0.1 ms a task).
 */
async function nothingOpen(db: Db): Promise<boolean> {
  const { rows } = await sql<{ done: boolean }>`
    SELECT NOT EXISTS (SELECT 1 FROM dispatch_tasks WHERE status = 'pending')
       AND NOT EXISTS (SELECT 1 FROM dispatch_tasks WHERE status IN ('assigned', 'running')) AS done`.execute(db);
  return rows[0]!.done;
}

/** Waits for every task to end, then insists they all completed. */
async function waitCompleted(db: Db, tasks: number): Promise<void> {
  await waitUntil('every task ended', () => nothingOpen(db), 120_000, 20);
  const completed = await completedCount(db);
  if (completed !== tasks) throw new Error(`${completed} of ${tasks} tasks completed`);
}

interface HandledTask {
  created: number;
  insertCommitted: number;
  assigned: number;
  committed: number;
  handler: number;
}

/** The hops of create -> handler, each as p50, p99 and its mean over the slowest 1% of tasks. */
function handlerHops(tasks: readonly HandledTask[]): { hop: string; cells: string[] }[] {
  const hops: [string, (t: HandledTask) => number][] = [
    ['the create\'s transaction (created_at -> its commit)', (t) => t.insertCommitted - t.created],
    ['waiting for a batch (create commit -> the batch\'s transaction starts, assigned_at)', (t) => t.assigned - t.insertCommitted],
    ['the batch (assigned_at -> its commit)', (t) => t.committed - t.assigned],
    ['delivery (batch commit -> the SDK handler holds the task)', (t) => t.handler - t.committed],
  ];
  const slowest = [...tasks].sort((a, b) => b.handler - b.created - (a.handler - a.created)).slice(0, Math.max(1, Math.ceil(tasks.length / 100)));
  return hops.map(([hop, of]) => {
    const all = summarize(tasks.map(of));
    const tail = slowest.reduce((sum, t) => sum + of(t), 0) / slowest.length;
    return { hop, cells: [fmtMs(all.p50), fmtMs(all.p99), fmtMs(tail)] };
  });
}

export async function roundtrip(report: string[]): Promise<void> {
  await withCommitStampedServer('roundtrip', async (serverUrl, database, dataDir) => {
    const db = database.db;
    await withReplicas(serverUrl, { count: 1, config: { server: { rate_limit_per_minute: 10_000_000 } } }, async ([replica]) => {
      const held = new Map<string, number>();
      const agents: AgentRunner[] = await Promise.all(
        Array.from({ length: AGENTS }, (_, i) =>
          runAgent({
            url: replica!.apiUrl,
            name: `sdk-agent-${String(i).padStart(3, '0')}`,
            capabilities: [BENCH_SCOPE],
            maxConcurrent: 4,
            handleSignals: false,
            handle: (task) => {
              held.set(task.id, wallNow());
              return { ok: true };
            },
          }),
        ),
      );
      try {
        const rest = { via: 'rest', urls: [replica!.apiUrl] } as const;
        const bareTiming = { warmupS: PROFILE.httpWarmupS, durationS: PROFILE.httpSeconds };
        // This VM's speed moves within minutes: the yardstick is taken on this server right
        // before and right after the round trip, and the ratio uses their mean.
        log('roundtrip: the yardstick first, the bare route on this server');
        const { result: bareBefore, steal: bareStealBefore } = await withSteal(() => bareRouteRate(serverUrl, bareTiming));
        // A replica fresh from its start still compiles its hot paths (V8's optimising compiler
        // took a tenth of its CPU through the first seconds of the round trip, sampled with perf):
        // the yardstick's figure comes after a warm-up, so this one does too.
        log(`roundtrip: warming up with ${WARMUP_TASKS} tasks`);
        await createPaced(rest, { rate: 1_000_000, count: WARMUP_TASKS, maxInFlight: 64, requester: REQUESTER });
        await waitCompleted(db, WARMUP_TASKS);
        await sql`DELETE FROM dispatch_tasks`.execute(db);
        log(`roundtrip: ${AGENTS} SDK agents, ${FLAT_OUT_TASKS} tasks created over REST as fast as 64 creators go`);
        const started = wallNow();
        const flatOutStolen = stealMeter();
        const cpuBefore = sampleCpu([replica!.pid], dataDir);
        await createPaced(rest, { rate: 1_000_000, count: FLAT_OUT_TASKS, maxInFlight: 64, requester: REQUESTER });
        await waitCompleted(db, FLAT_OUT_TASKS);
        const rate = (FLAT_OUT_TASKS * 1_000) / (wallNow() - started);
        const cpu = cpuPerTask(cpuBefore, sampleCpu([replica!.pid], dataDir), FLAT_OUT_TASKS);
        const flatOutSteal = flatOutStolen();
        const cores = availableParallelism();
        const ceiling = (cores * 1_000) / cpu.total;
        log(`  ${fmtRate(rate)} created, delivered and completed (${fmtSteal(flatOutSteal)})`);
        log(
          `  CPU per task: this process (creators, SDK agents) ${cpu.bench.toFixed(2)} ms, replica ${cpu.replicas.toFixed(2)} ms, ` +
            `PostgreSQL ${cpu.postgres.toFixed(2)} ms; ${cpu.total.toFixed(2)} ms in all, so ${cores} cores go to at most ${fmtRate(ceiling)}`,
        );
        recordFigure('roundTrip', rate, flatOutSteal);
        const { result: bareAfter, steal: bareStealAfter } = await withSteal(() => bareRouteRate(serverUrl, bareTiming));
        const bareRate = (bareBefore.requestsPerSecond + bareAfter.requestsPerSecond) / 2;
        log(
          `  bare route on this server: ${fmtRate(bareBefore.requestsPerSecond)} before (${fmtSteal(bareStealBefore)}), ` +
            `${fmtRate(bareAfter.requestsPerSecond)} after (${fmtSteal(bareStealAfter)}); round trip ${(rate / bareRate).toFixed(2)}x their mean`,
        );
        recordFigure('roundTripBareRate', bareRate, meanSteal([bareStealBefore, bareStealAfter]));

        const pacedRate = PACED_RATE ?? Math.max(1, Math.floor(rate / PACED_FRACTION));
        const pacedCount = pacedRate * PACED_SECONDS;
        log(`roundtrip: ${pacedCount} tasks at ${fmtRate(pacedRate)} (${PACED_RATE === undefined ? `1/${PACED_FRACTION} of that` : 'a fixed rate, --paced-rate'})`);
        await sql`DELETE FROM dispatch_tasks`.execute(db);
        held.clear();
        await resetStatementStats(db);
        const stepsBefore = await batchSteps(replica!);
        const pacedCpuBefore = sampleCpu([replica!.pid], dataDir);
        const pacedStolen = stealMeter();
        await createPaced(rest, { rate: pacedRate, count: pacedCount, maxInFlight: 128, requester: REQUESTER });
        await waitCompleted(db, pacedCount);
        const pacedSteal = pacedStolen();
        // At half the rate the machine is not half as busy: a batch, a group commit or a stream
        // read costs about as much with fewer tasks in it, and the assigner runs its batches back
        // to back while work keeps coming.
        const pacedCpu = cpuPerTask(pacedCpuBefore, sampleCpu([replica!.pid], dataDir), pacedCount);
        const pacedBusy = (pacedCpu.total * pacedRate) / (cores * 1_000);
        const statements = await costliestStatements(db, STATEMENTS_SHOWN);
        const stepsAfter = await batchSteps(replica!);
        // Each step's mean over the paced run's batches, on the replica's clock.
        const stepMeans = BATCH_STEPS.map((step) => {
          const [before, after] = [stepsBefore.get(step)!, stepsAfter.get(step)!];
          return { step, meanMs: ((after.s - before.s) * 1_000) / Math.max(1, after.n - before.n), batches: after.n - before.n };
        });
        // The commit stamps: the `created` event's transaction is the create's, the `assigned` event's the batch's, the `completed` event's the completion's.
        const { rows } = await sql<{ id: string; created: number; insertCommitted: number; assigned: number; committed: number; finished: number }>`
          SELECT t.id, extract(epoch FROM t.created_at) * 1000 AS created,
                 extract(epoch FROM pg_xact_commit_timestamp(c.xmin)) * 1000 AS "insertCommitted",
                 extract(epoch FROM t.assigned_at) * 1000 AS assigned,
                 extract(epoch FROM pg_xact_commit_timestamp(e.xmin)) * 1000 AS committed,
                 extract(epoch FROM pg_xact_commit_timestamp(f.xmin)) * 1000 AS finished
            FROM dispatch_tasks t
            JOIN dispatch_task_events e ON e.task_id = t.id AND e.event = 'assigned' AND e.attempt = 1
            JOIN dispatch_task_events c ON c.task_id = t.id AND c.event = 'created'
            JOIN dispatch_task_events f ON f.task_id = t.id AND f.event = 'completed'`.execute(db);
        const reached = rows.filter((r) => held.has(r.id));
        const assigned = summarize(rows.map((r) => Number(r.assigned) - Number(r.created)));
        const committedToHandler = summarize(reached.map((r) => held.get(r.id)! - Number(r.committed)));
        const delivered = summarize(reached.map((r) => held.get(r.id)! - Number(r.created)));
        // The handler returns at once: from its stamp, the SDK's complete call and its commit.
        const completing = summarize(reached.map((r) => Number(r.finished) - held.get(r.id)!));
        const hops = handlerHops(
          reached.map((r) => ({
            created: Number(r.created),
            insertCommitted: Number(r.insertCommitted),
            assigned: Number(r.assigned),
            committed: Number(r.committed),
            handler: held.get(r.id)!,
          })),
        );
        log(
          `  create -> assigned p50 ${fmtMs(assigned.p50)} p99 ${fmtMs(assigned.p99)}; assignment commit -> handler p50 ${fmtMs(committedToHandler.p50)} ` +
            `p99 ${fmtMs(committedToHandler.p99)}; create -> handler p50 ${fmtMs(delivered.p50)} p99 ${fmtMs(delivered.p99)} (n=${delivered.n})`,
        );
        log(`  the handler's return -> the completion's commit p50 ${fmtMs(completing.p50)} p99 ${fmtMs(completing.p99)}`);
        log(
          `  CPU per task at ${fmtRate(pacedRate)}: this process ${pacedCpu.bench.toFixed(2)} ms, replica ${pacedCpu.replicas.toFixed(2)} ms, ` +
            `PostgreSQL ${pacedCpu.postgres.toFixed(2)} ms; ${pacedCpu.total.toFixed(2)} ms in all, ${(pacedBusy * 100).toFixed(0)}% of ${cores} cores; ${fmtSteal(pacedSteal)}`,
        );
        // The summary's row is issue 17's target, at half the rate; other fractions only print.
        if (PACED_FRACTION === 2 && PACED_RATE === undefined) recordFigure('roundTripP99', delivered.p99, pacedSteal);
        log(`  where create -> handler goes (p50 / p99 / mean of the slowest 1%): ${hops.map((h) => `${h.hop.split(' (')[0]} ${h.cells.join(' / ')}`).join('; ')}`);
        log(`  the batch's steps on the replica's clock (mean ms): ${stepMeans.map((m) => `${m.step} ${m.meanMs.toFixed(1)}`).join(', ')}`);
        log(
          `  PostgreSQL's costliest statements (mean ms x calls, planned n times): ` +
            statements.map((st) => `${st.meanMs.toFixed(1)} x ${st.calls} (${st.plans}) ${st.statement.slice(0, 40)}`).join('; '),
        );
        report.push(
          `### The agent round trip (1 replica, ${AGENTS} SDK agents on the assignment stream, created and completed over REST)`,
          `CPU per task as fast as the creators go (/proc, user + system): this process (the creators and the SDK agents) ${cpu.bench.toFixed(2)} ms, ` +
            `the replica ${cpu.replicas.toFixed(2)} ms, PostgreSQL ${cpu.postgres.toFixed(2)} ms: ${cpu.total.toFixed(2)} ms in all, ` +
            `so this machine's ${cores} cores could run at most ${fmtRate(ceiling)} of this round trip.`,
          table(
            [
              'load',
              'tasks',
              'tasks/s (create -> complete)',
              'create -> assigned p50 / p99',
              'assignment commit -> handler p50 / p99',
              'create -> handler p50 / p99',
              "handler's return -> completion's commit p50 / p99",
            ],
            [
              ['as fast as 64 creators go', String(FLAT_OUT_TASKS), fmtRate(rate), '', '', '', ''],
              ['the bare route on this server (yardstick), before / after', '', `${fmtRate(bareBefore.requestsPerSecond)} / ${fmtRate(bareAfter.requestsPerSecond)}`, '', '', '', ''],
              [
                `paced at ${fmtRate(pacedRate)}`,
                String(delivered.n),
                '',
                `${fmtMs(assigned.p50)} / ${fmtMs(assigned.p99)}`,
                `${fmtMs(committedToHandler.p50)} / ${fmtMs(committedToHandler.p99)}`,
                `${fmtMs(delivered.p50)} / ${fmtMs(delivered.p99)}`,
                `${fmtMs(completing.p50)} / ${fmtMs(completing.p99)}`,
              ],
            ],
          ),
          `CPU per task at ${fmtRate(pacedRate)}: this process ${pacedCpu.bench.toFixed(2)} ms, the replica ${pacedCpu.replicas.toFixed(2)} ms, ` +
            `PostgreSQL ${pacedCpu.postgres.toFixed(2)} ms: ${pacedCpu.total.toFixed(2)} ms in all, keeping ${(pacedBusy * 100).toFixed(0)}% of the ${cores} cores busy; ` +
            `the hypervisor took ${fmtStealShare(pacedSteal)} of the VM's CPU meanwhile (flat out ${fmtStealShare(flatOutSteal)}).`,
          `Where create -> handler time goes at ${fmtRate(pacedRate)}: each hop's own percentiles, and its mean over the slowest 1% of tasks (by create -> handler), which says what the tail is made of.`,
          table(['hop', 'p50', 'p99', 'mean, slowest 1%'], hops.map((h) => [h.hop, ...h.cells])),
          `The assignment batch's steps at ${fmtRate(pacedRate)} on the replica's clock (dispatch_assignment_batch_step_seconds, the paced run's batches): ` +
            "each is PostgreSQL's time for its statement (below) plus the round trip and the wait for the replica's event loop.",
          table(
            ['step', 'what it is', 'batches', 'mean'],
            stepMeans.map((m) => [m.step, STEP_MEANING[m.step], String(m.batches), fmtMs(m.meanMs)]),
          ),
          `Where PostgreSQL's time goes at ${fmtRate(pacedRate)} (pg_stat_statements, top-level statements of the paced run, by total time). ` +
            'A statement\'s time includes its waits for other transactions\' locks: a mean well above what its rows cost is a wait. ' +
            'Its planning is counted apart (track_planning): a statement planned on every call pays that beside its run.',
          table(
            ['statement', 'calls', 'mean', 'rows a call', 'total', 'plans', 'planning, total'],
            statements.map((st) => [
              `\`${st.statement}\``,
              String(st.calls),
              fmtMs(st.meanMs),
              st.rowsPerCall.toFixed(1),
              fmtMs(st.totalMs),
              String(st.plans),
              fmtMs(st.planMs),
            ]),
          ),
        );
      } finally {
        await Promise.all(agents.map((a) => a.stop()));
      }
    });
  }, { statementStats: true });
}
