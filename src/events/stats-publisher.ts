import { randomUUID } from 'node:crypto';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { readQueueStats } from '../tasks/stats.js';
import { claimPeriodicSlot } from './outbox.queries.js';
import type { PublishFn } from './outbox-publisher.js';
import { STATS_SUBJECT } from './subjects.js';

export interface StatsPublisherOptions {
  db: Db;
  publish: PublishFn;
  canPublish: () => boolean;
  intervalMs: number;
  logger: Logger;
}

/**
 * `swarm.dispatch.stats` once per interval from the whole deployment, not once per replica: at
 * each interval boundary every connected replica tries to claim the interval's slot in the
 * database (one conditional upsert), and only the one that advances it publishes. No leader to
 * elect or fail over: if a replica dies, the next boundary is claimed by another. A replica
 * without NATS does not try, so it never takes a slot it cannot publish.
 */
export class StatsPublisher {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private inFlight: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: StatsPublisherOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight.catch(() => undefined);
  }

  /** Publishes the current interval's stats if this replica claims it; true when it did. */
  async runOnce(): Promise<boolean> {
    if (!this.options.canPublish()) return false;
    const slot = await claimPeriodicSlot(this.options.db, 'stats', this.options.intervalMs);
    if (slot === null) return false;
    const stats = await readQueueStats(this.options.db);
    await this.options.publish({
      subject: STATS_SUBJECT,
      // Keyed by slot: should two replicas ever publish one interval, the stream keeps one.
      msgId: `stats:${this.options.intervalMs}:${slot}`,
      body: { ...stats, event_id: randomUUID(), occurred_at: stats.timestamp },
    });
    return true;
  }

  /** Next tick just after the next interval boundary, so replicas' ticks meet on the same slot. */
  private schedule(): void {
    if (!this.running) return;
    const interval = this.options.intervalMs;
    const delay = interval - (Date.now() % interval) + Math.min(25, interval / 10);
    this.timer = setTimeout(() => {
      this.inFlight = this.runOnce()
        .catch((error: unknown) => this.options.logger.debug({ err: error }, 'stats not published this interval'))
        .finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }
}
