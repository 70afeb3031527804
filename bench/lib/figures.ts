import { fmtStealShare } from './steal.js';
import { fmtMs, fmtRate, table } from './stats.js';

/**
 * The figures the summary compares, filled in by whichever scenarios ran: Dispatch's own and
 * their yardsticks, all measured in this run on this database server. A row whose figures were
 * not measured (e.g. `--only latency`) is left out.
 */
export type FigureKey =
  | 'idleP50'
  | 'idleP99'
  | 'idleCommitP50'
  | 'idleCommitP99'
  | 'streamAddedP50'
  | 'restRateP99'
  | 'drain1'
  | 'drain3'
  | 'drain3vs1Paired'
  | 'httpCreates1'
  | 'gwLatencyP50'
  | 'gwLatencyP99'
  | 'drainGwThroughput'
  | 'skipLockedRate'
  | 'bareInsertRate'
  | 'roundTrip'
  | 'roundTripBareRate'
  | 'roundTripP99'
  | 'sustainedFirst'
  | 'sustainedLast'
  | 'sustainedFirstCpu'
  | 'sustainedLastCpu'
  | 'historySmall'
  | 'historyLarge';

const figures = new Map<FigureKey, number>();
/** The share of CPU time the hypervisor stole while each figure was measured (bench/lib/steal.ts), where known. */
const steals = new Map<FigureKey, number>();

export function recordFigure(key: FigureKey, value: number, steal?: number): void {
  figures.set(key, value);
  if (steal === undefined) steals.delete(key);
  else steals.set(key, steal);
}

interface SummaryRow {
  figure: string;
  ours: FigureKey;
  /** None for a target on Dispatch's own figure alone. */
  yardstick: FigureKey | null;
  /** How the ratio reads: ours / yardstick (lower is better for times, higher for rates). */
  unit: 'ms' | 'rate';
  yardstickLabel: string;
  target: string;
  /** Whether the target is met, given the ratio and Dispatch's own figure; null when there is none. */
  met: ((ratio: number, ours: number) => boolean) | null;
  /** A ratio the scenario measured pair by pair, used instead of ours / yardstick when recorded. */
  pairedRatio?: FigureKey;
}

const ROWS: SummaryRow[] = [
  { figure: 'idle create -> assigned, p50', ours: 'idleP50', yardstick: 'gwLatencyP50', unit: 'ms', yardstickLabel: 'graphile-worker addJob -> task start, p50', target: '<= 1.2x', met: (r) => r <= 1.2 },
  { figure: 'idle create -> assigned, p99', ours: 'idleP99', yardstick: 'gwLatencyP99', unit: 'ms', yardstickLabel: 'graphile-worker addJob -> task start, p99', target: '<= 1.5x', met: (r) => r <= 1.5 },
  // assigned_at is the batch's transaction start: read at the batch's commit, when the assignment
  // can be seen (and delivered), the same hop is longer by the batch's own work.
  { figure: 'idle create -> assignment committed, p50', ours: 'idleCommitP50', yardstick: 'gwLatencyP50', unit: 'ms', yardstickLabel: 'graphile-worker addJob -> task start, p50', target: '<= 1.2x', met: (r) => r <= 1.2 },
  { figure: 'idle create -> assignment committed, p99', ours: 'idleCommitP99', yardstick: 'gwLatencyP99', unit: 'ms', yardstickLabel: 'graphile-worker addJob -> task start, p99', target: '<= 1.5x', met: (r) => r <= 1.5 },
  { figure: 'create -> assigned p99 at 1,000 creates/s (REST)', ours: 'restRateP99', yardstick: 'idleP99', unit: 'ms', yardstickLabel: 'Dispatch idle p99', target: '<= 3x and <= 50 ms', met: (r, ours) => r <= 3 && ours <= 50 },
  // Its own yardstick, run at the start of each pair of drains (their median).
  { figure: 'drain of the backlog, 1 replica', ours: 'drain1', yardstick: 'drainGwThroughput', unit: 'rate', yardstickLabel: 'graphile-worker batched no-op jobs, beside it', target: '>= 0.60x', met: (r) => r >= 0.6 },
  { figure: 'drain of the backlog, 1 replica', ours: 'drain1', yardstick: 'skipLockedRate', unit: 'rate', yardstickLabel: 'raw SKIP LOCKED claims, 100 rows x 4 clients', target: '(none)', met: null },
  // The median of the pairs' ratios (each pair's two drains back to back), not of the medians' ratio.
  { figure: 'drain of the backlog, 3 replicas', ours: 'drain3', yardstick: 'drain1', unit: 'rate', yardstickLabel: 'Dispatch, 1 replica', target: '>= 0.95x', met: (r) => r >= 0.95, pairedRatio: 'drain3vs1Paired' },
  { figure: 'POST /api/v1/tasks, 1 replica assigning', ours: 'httpCreates1', yardstick: 'bareInsertRate', unit: 'rate', yardstickLabel: 'bare Hono route, one INSERT', target: '(none)', met: null },
  // Its own yardstick, on the round trip's server, taken just before and after it (their mean).
  { figure: 'agent round trip, SDK agents (create -> complete)', ours: 'roundTrip', yardstick: 'roundTripBareRate', unit: 'rate', yardstickLabel: 'bare Hono route, one INSERT, around it', target: '>= 0.25x', met: (r) => r >= 0.25 },
  { figure: 'idle delivery on the stream: assignment commit -> agent, p50', ours: 'streamAddedP50', yardstick: null, unit: 'ms', yardstickLabel: '', target: '<= 3 ms (issue 14)', met: (_r, ours) => ours <= 3 },
  { figure: 'create -> SDK handler p99 at half that rate', ours: 'roundTripP99', yardstick: 'idleP99', unit: 'ms', yardstickLabel: 'Dispatch idle create -> assigned p99', target: '<= 50 ms', met: (_r, ours) => ours <= 50 },
  // The sustained scenario's last minute against its first after the warm-up (10 s each in a short run), in its autovacuum mode.
  // The history scenario's median drain on its large history (1 M, 10 M in the full profile) against its small one (10 k).
  { figure: 'assignment with a large history of finished tasks', ours: 'historyLarge', yardstick: 'historySmall', unit: 'rate', yardstickLabel: 'the same with a small one', target: '>= 0.95x (flat)', met: (r) => r >= 0.95 },
  { figure: 'sustained assignment, 3 replicas, end of the run', ours: 'sustainedLast', yardstick: 'sustainedFirst', unit: 'rate', yardstickLabel: 'its start, after a 30 s warm-up', target: '>= 0.95x', met: (r) => r >= 0.95 },
  // The same spans' CPU a task (replicas, PostgreSQL, the benchmark's feeder and completer): whether the cost grew, whatever the machine gave.
  { figure: 'sustained assignment, CPU a task at the end of the run', ours: 'sustainedLastCpu', yardstick: 'sustainedFirstCpu', unit: 'ms', yardstickLabel: 'at its start, after a 30 s warm-up', target: '(none)', met: null },
];

// Below a millisecond (a task's CPU) one decimal would print 0.14 and 0.15 ms alike.
const fmt = (unit: 'ms' | 'rate', value: number) => (unit === 'rate' ? fmtRate(value) : value < 1 ? `${value.toFixed(2)} ms` : fmtMs(value));

const pct = (key: FigureKey) => fmtStealShare(steals.get(key));

/**
 * The closing table: figure | Dispatch | yardstick | ratio | target | met? | steal, for the figures
 * measured. A figure measured while the hypervisor took a share of the VM's CPU says as much of the
 * machine as of Dispatch.
 */
export function summaryTable(): string | null {
  const rows = ROWS.filter((row) => figures.has(row.ours) && (row.yardstick === null || figures.has(row.yardstick))).map((row) => {
    const ours = figures.get(row.ours)!;
    const yardstick = row.yardstick === null ? null : figures.get(row.yardstick)!;
    const paired = row.pairedRatio === undefined ? undefined : figures.get(row.pairedRatio);
    const ratio = paired ?? (yardstick === null ? Number.NaN : ours / yardstick);
    const met = row.met === null ? '' : row.met(ratio, ours) ? 'yes' : 'NO';
    return [
      row.figure,
      fmt(row.unit, ours),
      yardstick === null ? '(none)' : `${row.yardstickLabel}: ${fmt(row.unit, yardstick)}`,
      yardstick === null ? '' : `${ratio.toFixed(2)}x${paired === undefined ? '' : ', pair by pair'}`,
      row.target,
      met,
      row.yardstick === null ? pct(row.ours) : `${pct(row.ours)} / ${pct(row.yardstick)}`,
    ];
  });
  if (rows.length === 0) return null;
  return table(['figure', 'Dispatch', 'yardstick (same run)', 'ratio', 'target', 'met?', 'steal (Dispatch / yardstick)'], rows);
}
