import { BackgroundService } from '../background/service.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import {
  comparePositions,
  readAgentFeed,
  readFeedSince,
  readHorizon,
  lastEvent,
  touchAgents,
  touchFreeAgents,
  type FeedItem,
  type FeedPosition,
  type FeedSession,
} from './assignment-feed.queries.js';

export type { FeedItem } from './assignment-feed.queries.js';

/** Where a subscription's events go: an open event stream or a waiting long poll. */
export interface FeedSink {
  /** Events in feed order, each once; never called with an empty list. */
  send(items: FeedItem[]): void;
  /** Every event of the agent committed before the subscription joined has been sent; live events follow. */
  caughtUp?(): void;
  /** A comment line every keepalive interval (streams only). */
  keepalive?(): void;
  /** The hub is stopping: finish the response. */
  end(): void;
}

export interface Subscription {
  readonly agent: string;
  /** The last position sent (or the starting point). */
  position: FeedPosition;
  /**
   * While catching up: the agent's last event that had committed when the catch-up ended but lay
   * past the horizon (an older transaction was still running). The sink hears `caughtUp` once
   * it was sent, so a long poll never answers "nothing yet" for work committed before it asked.
   */
  catchingUpTo?: FeedPosition;
  readonly sink: FeedSink;
  closed: boolean;
}

export interface AssignmentHubOptions {
  /** Comment line interval on open streams (≤ 15 s keeps proxies from closing them). */
  keepaliveMs: number;
  /**
   * Standalone mode: an open stream is its agent's heartbeat, refreshed this often; null in
   * Warren mode, where Warren says who is alive.
   */
  heartbeatIntervalMs: number | null;
}

/** A read found events whose transaction committed behind an older one still running: look again this soon. */
const HELD_BACK_RETRY_MS = 5;
/** Events per replay read; a reconnect after a long absence is sent in pages of this many. */
const REPLAY_PAGE = 500;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * One per replica: the reader every open assignment stream and long poll of this replica shares.
 * A notification on NOTIFY_CHANNEL.assignments (one per transaction that gave or took work, from
 * any replica; the replica's shared LISTEN connection, src/db/listener.ts, calls `notified`)
 * wakes one read of the audit trail for all connected agents, from the hub's horizon on; each
 * subscription gets the events of its agent past its own position. Reads run one at a time, so a
 * subscription joining catches up to exactly where the next live read starts. After the LISTEN
 * connection was lost and opened again (`notified` too), the next read starts from the same
 * horizon, so nothing committed meanwhile is missed. This replica's own assignment batches wake a
 * read when their COMMIT returns; their notifications, which name the transaction (migration
 * 0033), then come back below the horizon that read reached and are dropped.
 */
export class AssignmentHub {
  /** Every transaction below this has been read for the live subscriptions. */
  private horizon = 0n;
  /** Every open subscription, whether joining, catching up or live. */
  private readonly open = new Set<Subscription>();
  private readonly live = new Map<string, Set<Subscription>>();
  private joining: Subscription[] = [];
  /** A read is owed, whatever it finds. */
  private dirty = false;
  /**
   * The latest transaction named by a notification that came while a read ran (that read may
   * have begun before the transaction committed): owed a read unless that read's horizon passed it.
   */
  private notifiedDuringRead: bigint | null = null;
  private reading: Promise<void> | null = null;
  private stopped = false;
  private failures = 0;
  private readRetry: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private readonly heartbeats: StreamHeartbeats | null;

  constructor(
    private readonly db: Db,
    /** Where the live read runs: the replica's LISTEN session, which the notifications come from. */
    private readonly session: FeedSession,
    private readonly options: AssignmentHubOptions,
    private readonly logger: Logger,
  ) {
    this.heartbeats = options.heartbeatIntervalMs === null ? null : new StreamHeartbeats(db, options.heartbeatIntervalMs, () => this.agents(), logger);
  }

  async start(): Promise<void> {
    this.horizon = await readHorizon(this.db);
    // Whatever committed before the LISTEN connection is up is in the audit trail.
    this.wake();
    this.keepaliveTimer = setInterval(() => this.keepalive(), this.options.keepaliveMs);
    this.keepaliveTimer.unref();
    this.heartbeats?.start();
  }

  /**
   * Work was given or taken somewhere (or the LISTEN connection is back): read the audit trail.
   * `tx`, the writing transaction a notification names: a transaction below the horizon has been
   * read already; one named while a read runs is looked at once that read has ended.
   */
  notified(tx?: bigint): void {
    if (this.stopped) return;
    if (tx === undefined) return this.wake();
    if (tx < this.horizon) return;
    if (!this.reading) return this.wake();
    if (this.notifiedDuringRead === null || tx > this.notifiedDuringRead) this.notifiedDuringRead = tx;
  }

  /** Whether a read is owed: asked for, or a notification during the last read that it did not reach. */
  private owed(): boolean {
    return this.dirty || (this.notifiedDuringRead !== null && this.notifiedDuringRead >= this.horizon);
  }

  /** Ends every stream and long poll; waits for the read under way. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.readRetry) clearTimeout(this.readRetry);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    const open = [...this.open];
    this.open.clear();
    this.joining = [];
    this.live.clear();
    for (const sub of open) {
      sub.closed = true;
      sub.sink.end();
    }
    await this.heartbeats?.stop();
    await this.reading;
  }

  get accepting(): boolean {
    return !this.stopped;
  }

  /** How many streams and long polls are open on this replica. */
  get size(): number {
    return this.open.size;
  }

  /**
   * Starts sending the agent's events after `position` to `sink`: first what the audit trail
   * holds up to the hub's horizon, then live.
   */
  subscribe(agent: string, position: FeedPosition, sink: FeedSink): Subscription {
    const sub: Subscription = { agent, position, sink, closed: false };
    if (this.stopped) {
      sub.closed = true;
      sink.end();
      return sub;
    }
    this.open.add(sub);
    this.joining.push(sub);
    this.wake();
    return sub;
  }

  /** The client went away (or the long poll answered). The agent's heartbeat timeout starts when its last stream closes. */
  unsubscribe(sub: Subscription): void {
    if (sub.closed) return;
    sub.closed = true;
    this.open.delete(sub);
    const subs = this.live.get(sub.agent);
    subs?.delete(sub);
    if (subs?.size === 0) this.live.delete(sub.agent);
    this.joining = this.joining.filter((s) => s !== sub);
    if (![...this.open].some((s) => s.agent === sub.agent)) this.heartbeats?.lastSeen(sub.agent);
  }

  /** Agents with a stream or long poll open here. */
  private agents(): string[] {
    return [...new Set([...this.open].map((s) => s.agent))];
  }

  private wake(): void {
    this.dirty = true;
    this.startReading();
  }

  private startReading(): void {
    if (this.reading || this.stopped) return;
    this.reading = this.readWhileOwed().finally(() => {
      this.reading = null;
      // Owed since the loop's last look: this replica's assigner calls `notified` from its own
      // continuation, which can run between that look and this one. (A failed read has its retry.)
      if (this.failures === 0 && this.owed()) this.startReading();
    });
  }

  private async readWhileOwed(): Promise<void> {
    while (this.owed() && !this.stopped) {
      this.dirty = false;
      this.notifiedDuringRead = null;
      try {
        await this.readOnce();
        if (this.failures > 0) this.logger.info('assignment streams reading the audit trail again');
        this.failures = 0;
      } catch (error) {
        if (this.failures === 0) this.logger.warn({ err: error }, 'assignment streams cannot read the audit trail; retrying');
        this.failures += 1;
        this.retryRead(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1)));
        return;
      }
    }
  }

  private retryRead(afterMs: number): void {
    if (this.readRetry || this.stopped) return;
    this.readRetry = setTimeout(() => {
      this.readRetry = null;
      this.wake();
    }, afterMs);
    this.readRetry.unref();
  }

  /** One live read for every live subscription, then the catch-up of those that joined. */
  private async readOnce(): Promise<void> {
    const agents = [...this.live.keys()];
    if (agents.length === 0) {
      // Nobody to send to: nothing to read. One joining catches up from the audit trail to a fresh horizon.
      if (this.joining.length === 0) return;
      this.horizon = await readHorizon(this.db);
    } else {
      const { horizon, ready, heldBack } = await readFeedSince(this.session, this.horizon, agents);
      const byAgent = new Map<string, FeedItem[]>();
      for (const item of ready) {
        const items = byAgent.get(item.event.agent) ?? [];
        items.push(item);
        byAgent.set(item.event.agent, items);
      }
      for (const [agent, items] of byAgent) for (const sub of this.live.get(agent) ?? []) deliver(sub, items);
      this.horizon = horizon;
      if (heldBack > 0) this.retryRead(HELD_BACK_RETRY_MS);
    }
    const joining = this.joining;
    this.joining = [];
    for (const sub of joining) {
      await this.catchUp(sub);
      if (sub.closed) continue;
      const subs = this.live.get(sub.agent) ?? new Set();
      subs.add(sub);
      this.live.set(sub.agent, subs);
      const last = await lastEvent(this.db, sub.agent);
      if (last && comparePositions(last, sub.position) > 0) sub.catchingUpTo = last;
      else sub.sink.caughtUp?.();
    }
    // Events of the joined agents that committed behind the horizon were neither caught up nor
    // counted as held back (they were not live yet): read once more, now with them live.
    if (joining.length > 0) this.dirty = true;
  }

  /** Sends what the audit trail holds between the subscription's position and the horizon. */
  private async catchUp(sub: Subscription): Promise<void> {
    while (!sub.closed) {
      const items = await readAgentFeed(this.db, sub.agent, sub.position, this.horizon, REPLAY_PAGE);
      if (items.length === 0) return;
      deliver(sub, items);
      if (items.length < REPLAY_PAGE) return;
    }
  }

  private keepalive(): void {
    for (const subs of this.live.values()) for (const sub of subs) sub.sink.keepalive?.();
  }
}

/** Hands the items past the subscription's position to its sink, and moves the position. */
function deliver(sub: Subscription, items: FeedItem[]): void {
  if (sub.closed) return;
  const fresh = items.filter((item) => comparePositions(item.event, sub.position) > 0);
  if (fresh.length === 0) return;
  sub.position = fresh[fresh.length - 1]!.event;
  sub.sink.send(fresh);
  if (sub.catchingUpTo && comparePositions(sub.position, sub.catchingUpTo) >= 0) {
    sub.catchingUpTo = undefined;
    sub.sink.caughtUp?.();
  }
}

/** Agents whose rows a batch held are tried again this soon, this many times, and then waited for. */
const PASSED_OVER_RETRY_MS = 20;
const PASSED_OVER_TRIES = 5;

/**
 * Standalone mode: an agent with a stream open is alive. Its last_seen_at is refreshed while the
 * stream is open, and once more when its last stream closes, so the heartbeat timeout
 * (assignment.agent_heartbeat_timeout_ms) counts from the close. A refresh passes over the rows an
 * assignment batch holds and comes back for them (touchFreeAgents says why).
 */
class StreamHeartbeats extends BackgroundService<string[]> {
  private passedOver: string[] = [];
  private tries = 0;

  constructor(
    private readonly db: Db,
    private readonly intervalMs: number,
    private readonly connected: () => string[],
    logger: Logger,
  ) {
    super('assignment stream heartbeats', { intervalMs }, logger);
  }

  /** Refreshes the connected agents, or those the last pass passed over; returns the ones passed over now. */
  async runOnce(): Promise<string[]> {
    const connected = new Set(this.connected());
    const agents = this.passedOver.length > 0 ? this.passedOver.filter((agent) => connected.has(agent)) : [...connected];
    if (agents.length === 0) {
      this.passedOver = [];
    } else if (this.tries >= PASSED_OVER_TRIES) {
      await touchAgents(this.db, agents);
      this.passedOver = [];
    } else {
      this.passedOver = await touchFreeAgents(this.db, agents);
    }
    this.tries = this.passedOver.length > 0 ? this.tries + 1 : 0;
    return this.passedOver;
  }

  protected override delayAfter(passedOver: string[] | undefined): number {
    return passedOver !== undefined && passedOver.length > 0 ? PASSED_OVER_RETRY_MS : this.intervalMs;
  }

  lastSeen(agent: string): void {
    touchAgents(this.db, [agent]).catch((error: unknown) => this.logger.warn({ err: error, agent }, 'could not record the end of an assignment stream'));
  }
}
