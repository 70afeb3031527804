import { randomUUID } from 'node:crypto';
import { BackgroundService } from '../background/service.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { readQueueStats } from '../tasks/stats.queries.js';
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
export class StatsPublisher extends BackgroundService<boolean> {
  constructor(private readonly options: StatsPublisherOptions) {
    super('stats publisher', { intervalMs: options.intervalMs, failureMessage: 'stats not published this interval' }, options.logger);
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

  /** Next pass just after the next interval boundary, so replicas' passes meet on the same slot. */
  protected override delayAfter(): number {
    const interval = this.options.intervalMs;
    return interval - (Date.now() % interval) + Math.min(25, interval / 10);
  }
}
