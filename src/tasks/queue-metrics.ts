import { Counter, Gauge, Histogram, type MetricType, type Registry } from 'prom-client';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import {
  readAgentLoad,
  readObservations,
  readOldestPending,
  readScopeCounts,
  type AgentLoadRow,
  type ObservationRow,
  type OldestPendingRow,
  type ScopeCountRow,
} from './queue-metrics.queries.js';

/** Label that scopes past `metrics.max_scopes` are reported under. */
export const OTHER_SCOPE = 'other';

const OPEN_STATUSES = ['waiting', 'pending', 'assigned', 'running'] as const;

export interface QueueMetricsOptions {
  db: Db;
  logger: Logger;
  /** Scopes with a label of their own; the rest are summed under `other`. */
  maxScopes: number;
  defaultMaxConcurrent: number;
}

interface Snapshot {
  counts: ScopeCountRow[];
  oldest: OldestPendingRow[];
  buckets: number[];
  observations: ObservationRow[];
  agents: AgentLoadRow[];
  /** Reported scope for each scope in the database (itself, or `other`). */
  label: (scope: string) => string;
  /** Every label the snapshot reports, so a scope with nothing pending still shows 0. */
  labels: string[];
}

/**
 * The scopes that keep their own label: the deepest open queues first (those are the ones an
 * alert is about), then the busiest by finished tasks, then by name so the choice is stable
 * between scrapes when nothing moves.
 */
export function chooseScopeLabels(counts: ScopeCountRow[], observations: ObservationRow[], maxScopes: number): (scope: string) => string {
  const rank = new Map<string, { open: number; finished: number }>();
  const entry = (scope: string) => rank.get(scope) ?? rank.set(scope, { open: 0, finished: 0 }).get(scope)!;
  for (const c of counts) entry(c.scope).open += c.tasks;
  for (const o of observations) if (o.kind === 'finished') entry(o.scope).finished += o.observations;
  const kept = new Set(
    [...rank.entries()]
      .sort(([a, x], [b, y]) => y.open - x.open || y.finished - x.finished || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, maxScopes)
      .map(([scope]) => scope),
  );
  return (scope) => (kept.has(scope) ? scope : OTHER_SCOPE);
}

function sumBy<T>(rows: T[], key: (row: T) => string, value: (row: T) => number): Map<string, number> {
  const sums = new Map<string, number>();
  for (const row of rows) sums.set(key(row), (sums.get(key(row)) ?? 0) + value(row));
  return sums;
}

/**
 * Queue metrics read from the database at scrape time: depth, oldest pending age, the
 * schedule-to-start and run histograms, finished counters and agent load. Every query reads the
 * counter tables of migration 0008, dispatch_agents, or one index entry per scope: never a pass
 * over dispatch_tasks. The values are cluster-wide, so every replica reports the same series:
 * aggregate across replicas with max(), not sum().
 */
export function registerQueueMetrics(registry: Registry, options: QueueMetricsOptions): void {
  const { db, logger, maxScopes, defaultMaxConcurrent } = options;

  const read = async (): Promise<Snapshot> => {
    const [counts, oldest, { buckets, rows: observations }, agents] = await Promise.all([
      readScopeCounts(db),
      readOldestPending(db),
      readObservations(db),
      readAgentLoad(db, defaultMaxConcurrent),
    ]);
    const label = chooseScopeLabels(counts, observations, maxScopes);
    const labels = [...new Set([...counts, ...observations].map((r) => label(r.scope)))];
    return { counts, oldest, buckets, observations, agents, label, labels };
  };
  // The registry asks every metric at once: while one read is in flight they all share it (and so
  // do overlapping scrapes). A database that cannot answer leaves these series out rather than
  // failing the whole scrape, so process metrics and `up` still tell the story.
  let inFlight: Promise<Snapshot | null> | undefined;
  const snapshot = (): Promise<Snapshot | null> => {
    inFlight ??= read()
      .catch((error: unknown) => {
        logger.warn({ err: error }, 'queue metrics: database read failed');
        return null;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  /** A metric's collect(): cleared, then filled from the shared snapshot (left empty when the read failed). */
  const fromSnapshot =
    <M extends { reset(): void }>(fill: (metric: M, s: Snapshot) => void) =>
    async function collect(this: M): Promise<void> {
      this.reset();
      const s = await snapshot();
      if (s) fill(this, s);
    };

  new Gauge({
    name: 'dispatch_queue_depth',
    help: 'Open tasks by scope and status (waiting for dependencies, pending, assigned, running), cluster-wide.',
    labelNames: ['scope', 'status'] as const,
    registers: [registry],
    collect: fromSnapshot<Gauge<'scope' | 'status'>>((gauge, s) => {
      const depth = sumBy(s.counts, (c) => `${s.label(c.scope)}\u0000${c.status}`, (c) => c.tasks);
      for (const scope of s.labels) {
        for (const status of OPEN_STATUSES) gauge.set({ scope, status }, depth.get(`${scope}\u0000${status}`) ?? 0);
      }
    }),
  });

  new Gauge({
    name: 'dispatch_oldest_pending_seconds',
    help: 'Age of the oldest pending task per scope (0 when none waits), cluster-wide.',
    labelNames: ['scope'] as const,
    registers: [registry],
    collect: fromSnapshot<Gauge<'scope'>>((gauge, s) => {
      const oldest = new Map<string, number>();
      for (const o of s.oldest) oldest.set(s.label(o.scope), Math.max(oldest.get(s.label(o.scope)) ?? 0, o.seconds));
      for (const scope of s.labels) gauge.set({ scope }, oldest.get(scope) ?? 0);
    }),
  });

  new Counter({
    name: 'dispatch_tasks_finished_total',
    help: 'Tasks that reached a terminal status, by scope and outcome (completed, failed, cancelled, timeout), cluster-wide since migration 0008.',
    labelNames: ['scope', 'outcome'] as const,
    registers: [registry],
    collect: fromSnapshot<Counter<'scope' | 'outcome'>>((counter, s) => {
      const finished = s.observations.filter((o) => o.kind === 'finished');
      for (const [key, n] of sumBy(finished, (o) => `${s.label(o.scope)}\u0000${o.outcome}`, (o) => o.observations)) {
        const [scope, outcome] = key.split('\u0000') as [string, string];
        counter.inc({ scope, outcome }, n);
      }
    }),
  });

  registry.registerMetric(
    new StoredHistogram('dispatch_schedule_to_start_seconds', 'Seconds a task waited pending before each assignment (from creation, or from its return to pending), by scope, cluster-wide.', ['scope'], async () => {
      const s = await snapshot();
      return s && { buckets: s.buckets, rows: s.observations.filter((o) => o.kind === 'schedule_to_start'), labels: (o) => ({ scope: s.label(o.scope) }) };
    }),
  );
  registry.registerMetric(
    new StoredHistogram('dispatch_task_run_seconds', 'Seconds from start (or assignment) to the end of each attempt, by scope and outcome (a terminal status, or retried), cluster-wide.', ['scope', 'outcome'], async () => {
      const s = await snapshot();
      return s && { buckets: s.buckets, rows: s.observations.filter((o) => o.kind === 'run'), labels: (o) => ({ scope: s.label(o.scope), outcome: o.outcome }) };
    }),
  );

  const agentGauges = [
    ['dispatch_agent_load', 'Tasks assigned or running on each agent that is not stopped.', 'load'],
    ['dispatch_agent_limit', 'Most tasks each agent that is not stopped may hold (its max_concurrent, or the default).', 'limit'],
  ] as const;
  for (const [name, help, field] of agentGauges) {
    new Gauge({
      name,
      help,
      labelNames: ['agent'] as const,
      registers: [registry],
      collect: fromSnapshot<Gauge<'agent'>>((gauge, s) => {
        for (const a of s.agents) gauge.set({ agent: a.name }, a[field]);
      }),
    });
  }
}

interface StoredBuckets {
  buckets: number[];
  rows: ObservationRow[];
  labels: (row: ObservationRow) => Record<string, string>;
}

type HistogramValue = { value: number; metricName: string; labels: Record<string, string | number> };

/**
 * A histogram whose buckets are kept by the database (dispatch_scope_observations, one row per
 * bucket, not cumulative). prom-client's Histogram only counts what this process observes, so
 * this one renders the stored rows in the same exposition shape instead.
 */
class StoredHistogram extends Histogram {
  constructor(
    private readonly metricName: string,
    private readonly metricHelp: string,
    labelNames: string[],
    private readonly source: () => Promise<StoredBuckets | null>,
  ) {
    // Not registered here: prom-client would otherwise add it to its global registry.
    super({ name: metricName, help: metricHelp, labelNames, registers: [] });
  }

  override async get() {
    return await this.getForPromString();
  }

  /** What the registry renders when present (prom-client's own Histogram defines it too). */
  async getForPromString() {
    const stored = await this.source();
    const values: HistogramValue[] = [];
    const series = new Map<string, { labels: Record<string, string>; perBucket: Map<number, number>; sum: number }>();
    for (const row of stored?.rows ?? []) {
      const labels = stored!.labels(row);
      const key = JSON.stringify(labels);
      const one = series.get(key) ?? series.set(key, { labels, perBucket: new Map(), sum: 0 }).get(key)!;
      one.perBucket.set(row.le, (one.perBucket.get(row.le) ?? 0) + row.observations);
      one.sum += row.seconds;
    }
    for (const { labels, perBucket, sum } of series.values()) {
      let cumulative = 0;
      for (const le of stored!.buckets) {
        cumulative += perBucket.get(le) ?? 0;
        values.push({ metricName: `${this.metricName}_bucket`, labels: { ...labels, le: le === Infinity ? '+Inf' : le }, value: cumulative });
      }
      values.push({ metricName: `${this.metricName}_sum`, labels, value: sum });
      values.push({ metricName: `${this.metricName}_count`, labels, value: cumulative });
    }
    // prom-client's typings declare a numeric enum; its own metrics carry this string at run time.
    return { name: this.metricName, help: this.metricHelp, type: 'histogram' as unknown as MetricType, aggregator: 'sum' as const, collect: () => undefined, values };
  }
}
