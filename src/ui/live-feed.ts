import { createHash } from 'node:crypto';
import { BackgroundService } from '../background/service.js';
import type { AgentRow, Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { listAgents } from '../agents/agent.queries.js';
import { latestTaskEventId } from '../tasks/task.queries.js';
import { readObservations, readScopeCounts, type ObservationRow } from '../tasks/queue-metrics.queries.js';
import { scopeOverview, type ScopeView } from '../scopes/scope.service.js';

/** Minutes of created / finished history the overview charts. */
export const CHART_MINUTES = 60;

/** The statuses a scope's depth counts (ScopeView.depth): created = these + finished. */
const OPEN_STATUSES: ReadonlySet<string> = new Set(['pending', 'assigned', 'running']);

function finishedByScope(rows: readonly ObservationRow[]): Map<string, number> {
  const finished = new Map<string, number>();
  for (const row of rows) {
    if (row.kind === 'finished') finished.set(row.scope, (finished.get(row.scope) ?? 0) + row.observations);
  }
  return finished;
}

/** A scope as GET /api/v1/scopes shows it, plus what the overview page adds. */
export interface ScopeOverview extends ScopeView {
  /** When the oldest pending task was created (the page counts its age up), or null. */
  oldestPendingSince: Date | null;
  /** Per minute, oldest first, the current minute last; null where this replica has no sample. */
  created: (number | null)[];
  finished: (number | null)[];
}

export interface LiveSnapshot {
  /** Changes whenever anything a page shows changes: the pages refetch only then. */
  version: string;
  at: Date;
  scopes: ScopeOverview[];
  agents: AgentRow[];
}

type Listener = (snapshot: LiveSnapshot) => void;

/**
 * One read of the queue per replica per second, shared by every open dashboard: the scopes as
 * GET /api/v1/scopes reads them (counters, one index probe per scope, dispatch_scopes), the
 * finished counters, the agents table and the newest audit event id; never a pass over the tasks. The
 * version it hands the pages changes when any of those does, so an idle swarm costs an open page
 * one small SSE message a second and nothing else.
 *
 * The created / finished per minute chart is kept here, in memory, from samples of the cumulative
 * counters (created = open + finished), so it covers the time since this replica started, up to an
 * hour. Without a dashboard open the samples are taken every 10 s, enough for per-minute bars, and
 * a pass reads those two counters only: the whole read probes every scope's oldest pending task
 * (28.7 ms once at 1,000 tasks/s, stepping over the index entries the claims left dead) and lists
 * the agents, every 10 s on every replica, for pages nobody had open.
 */
export class LiveFeed extends BackgroundService<LiveSnapshot | undefined> {
  private readonly listeners = new Set<Listener>();
  /** Per scope, per minute since the epoch: the cumulative created and finished last seen then. */
  private readonly samples = new Map<string, Map<number, { created: number; finished: number }>>();
  private latest: LiveSnapshot | undefined;
  private endStreams!: () => void;
  /** Resolves when the feed stops: the open event streams end, so the server can close. */
  readonly closed = new Promise<void>((resolve) => (this.endStreams = resolve));

  constructor(
    private readonly db: Db,
    logger: Logger,
    private readonly options: { activeIntervalMs: number; idleIntervalMs: number } = { activeIntervalMs: 1_000, idleIntervalMs: 10_000 },
  ) {
    super('dashboard feed', { intervalMs: options.activeIntervalMs, runAtStart: true }, logger);
  }

  /** The last snapshot, read now if there is none yet (or it is older than a tick). */
  async snapshot(): Promise<LiveSnapshot> {
    if (this.latest && Date.now() - this.latest.at.getTime() < this.options.activeIntervalMs) return this.latest;
    return await this.read();
  }

  /** Calls `listener` with every new snapshot until the returned function is called. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.nudge();
    return () => this.listeners.delete(listener);
  }

  get closing(): boolean {
    return this.stopped;
  }

  override async stop(): Promise<void> {
    this.endStreams();
    await super.stop();
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /** With pages open, a whole read for them; without, the chart's samples only (undefined). */
  async runOnce(): Promise<LiveSnapshot | undefined> {
    if (this.listeners.size > 0) return await this.read();
    await this.sampleCounters();
    return undefined;
  }

  /** The chart's sample without a page open: the open counters and the finished ones, nothing else. */
  private async sampleCounters(): Promise<void> {
    const [counts, observations] = await Promise.all([readScopeCounts(this.db), readObservations(this.db)]);
    const minute = Math.floor(Date.now() / 60_000);
    const finished = finishedByScope(observations.rows);
    const open = new Map<string, number>();
    for (const c of counts) open.set(c.scope, (open.get(c.scope) ?? 0) + (OPEN_STATUSES.has(c.status) ? c.tasks : 0));
    for (const scope of new Set([...open.keys(), ...finished.keys()])) {
      const done = finished.get(scope) ?? 0;
      this.record(scope, minute, { created: (open.get(scope) ?? 0) + done, finished: done });
    }
  }

  private async read(): Promise<LiveSnapshot> {
    const [views, observations, agents, lastEvent] = await Promise.all([
      scopeOverview(this.db),
      readObservations(this.db),
      listAgents(this.db),
      latestTaskEventId(this.db),
    ]);
    const at = new Date();
    const finished = finishedByScope(observations.rows);
    const minute = Math.floor(at.getTime() / 60_000);
    const list: ScopeOverview[] = views.map((view) => {
      const done = finished.get(view.scope) ?? 0;
      const { pending, assigned, running } = view.depth;
      this.record(view.scope, minute, { created: pending + assigned + running + done, finished: done });
      const oldestPendingSince = pending > 0 ? new Date(at.getTime() - Math.round(view.oldest_pending_seconds) * 1000) : null;
      return { ...view, oldestPendingSince, ...this.perMinute(view.scope, minute) };
    });
    const version = createHash('sha256')
      .update(JSON.stringify([lastEvent, list.map((s) => [s.scope, s.depth, s.paused, s.max_running, s.max_starts_per_minute, s.held_because, s.created.at(-1), s.finished.at(-1)]), agents]))
      .digest('base64url')
      .slice(0, 16);
    const snapshot: LiveSnapshot = { version, at, scopes: list, agents };
    this.latest = snapshot;
    for (const listener of this.listeners) listener(snapshot);
    return snapshot;
  }

  protected override delayAfter(): number {
    return this.listeners.size > 0 ? this.options.activeIntervalMs : this.options.idleIntervalMs;
  }

  private record(scope: string, minute: number, totals: { created: number; finished: number }): void {
    let minutes = this.samples.get(scope);
    if (!minutes) this.samples.set(scope, (minutes = new Map()));
    minutes.set(minute, totals);
    for (const seen of minutes.keys()) if (seen <= minute - CHART_MINUTES - 1) minutes.delete(seen);
  }

  /** Tasks created and finished in each of the last CHART_MINUTES minutes (the current one so far). */
  private perMinute(scope: string, minute: number): Pick<ScopeOverview, 'created' | 'finished'> {
    const minutes = this.samples.get(scope)!;
    const created: (number | null)[] = [];
    const finished: (number | null)[] = [];
    for (let m = minute - CHART_MINUTES + 1; m <= minute; m++) {
      const before = minutes.get(m - 1);
      const now = minutes.get(m);
      // Counters can go down (a DBA deleting open tasks); a rate is never negative.
      created.push(before && now ? Math.max(0, now.created - before.created) : null);
      finished.push(before && now ? Math.max(0, now.finished - before.finished) : null);
    }
    return { created, finished };
  }
}
