import { BackgroundService } from '../background/service.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { OutageLog } from '../background/outage-log.js';
import * as q from './outbox.queries.js';
import { scopeEventMessage, taskEventMessage, type OutgoingMessage } from './subjects.js';

/** Publishes one message to JetStream and resolves with its acknowledgement; throws if not stored. */
export type PublishFn = (message: OutgoingMessage) => Promise<{ duplicate: boolean }>;

export interface OutboxPublisherOptions {
  db: Db;
  publish: PublishFn;
  /** False while NATS is down or the stream is not ready: the outbox is then left alone. */
  canPublish: () => boolean;
  logger: Logger;
  metrics: Metrics;
  /**
   * Idle poll period. Events are found by polling rather than LISTEN/NOTIFY: a NOTIFY per event
   * would serialise every committing transaction on the notify queue lock. The idle probe is one
   * index lookup on an (almost always) empty table, so 50 ms costs little and bounds the delay of
   * events other replicas and this replica's background loops write; this replica's requests and
   * assignment batches say so themselves (`eventsCommitted`).
   */
  pollIntervalMs?: number;
  /** Events per transaction; a full batch is followed by the next one at once. */
  batchSize?: number;
  /** How often the backlog metrics are refreshed (also while NATS is down, when they matter). */
  backlogSampleMs?: number;
}

export interface BatchResult {
  /** Another replica held the publisher lock: nothing was read. */
  skipped: boolean;
  read: number;
  published: number;
  /** Of `published`, how many JetStream already had (a republished batch). */
  duplicates: number;
  /** Not published this time: a failed publish and the later events of the same tasks. */
  held: number;
}

/**
 * Publishes a batch so that each task's events reach the stream in order: tasks in parallel,
 * each task's events one after another, and a task stops at its first failure so no later event
 * of it overtakes the one that failed. Returns what was acknowledged.
 */
export async function publishInTaskOrder(
  rows: q.OwedEvent[],
  publish: PublishFn,
): Promise<{ published: q.OwedEvent[]; duplicates: number; held: number; error: unknown }> {
  // A scope's events form a chain of their own, like a task's. A row whose event is gone has
  // nothing to send: it counts as published, so it leaves the outbox.
  const published: q.OwedEvent[] = rows.filter((row) => row.task_id === null && !row.scope);
  const chains = new Map<string, q.OwedEvent[]>();
  for (const row of rows) {
    const key = row.task_id ?? (row.scope ? `scope:${row.scope}` : null);
    if (key === null) continue;
    const chain = chains.get(key);
    if (chain) chain.push(row);
    else chains.set(key, [row]);
  }
  let duplicates = 0;
  let held = 0;
  let error: unknown;
  await Promise.all(
    [...chains.values()].map(async (chain) => {
      for (const [index, row] of chain.entries()) {
        try {
          const ack = await publish(messageOf(row));
          if (ack.duplicate) duplicates += 1;
          published.push(row);
        } catch (failure) {
          error ??= failure;
          held += chain.length - index;
          return;
        }
      }
    }),
  );
  return { published, duplicates, held, error };
}

function messageOf(row: q.OwedEvent): OutgoingMessage {
  return row.task_id !== null ? taskEventMessage({ ...row, task_id: row.task_id }) : scopeEventMessage({ ...row, scope: row.scope! });
}

/** The shortest time between the starts of two passes that a commit on this replica asks for. */
const MIN_PASS_GAP_MS = 10;

/** The outbox's publishing loop: every replica runs one; one at a time publishes. */
export class OutboxPublisher extends BackgroundService<BatchResult> {
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly natsOutage: OutageLog;
  private readonly backlog: OutboxBacklogSampler;
  private lastPassAt = Number.NEGATIVE_INFINITY;
  private nudgeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: OutboxPublisherOptions) {
    const pollIntervalMs = options.pollIntervalMs ?? 50;
    super(
      'outbox publisher',
      { intervalMs: pollIntervalMs, runAtStart: true, dependency: 'outbox-database', failureMessage: 'could not read or update the event outbox; retrying' },
      options.logger,
    );
    this.pollIntervalMs = pollIntervalMs;
    this.batchSize = options.batchSize ?? 500;
    this.natsOutage = new OutageLog(options.logger, 'nats-publish');
    this.backlog = new OutboxBacklogSampler(options.db, options.metrics, options.backlogSampleMs ?? 5_000, options.logger);
  }

  override start(): void {
    super.start();
    this.backlog.start();
  }

  /** Finishes the batch in flight (publishes and their commit), then stops. */
  override async stop(): Promise<void> {
    if (this.nudgeTimer) clearTimeout(this.nudgeTimer);
    this.nudgeTimer = null;
    await Promise.all([super.stop(), this.backlog.stop()]);
  }

  /**
   * One batch: if NATS can take events, some are owed and no other replica is publishing,
   * publish and forget them.
   */
  async runOnce(): Promise<BatchResult> {
    this.lastPassAt = performance.now();
    const none: BatchResult = { skipped: false, read: 0, published: 0, duplicates: 0, held: 0 };
    if (!this.options.canPublish() || !(await q.hasOwedEvents(this.options.db))) return none;
    const result = await q.asOnlyPublisher(this.options.db, async (tx) => {
      const rows = await q.readOwedEvents(tx, this.batchSize);
      const outcome = await publishInTaskOrder(rows, this.options.publish);
      await q.forgetPublished(
        tx,
        outcome.published.map((r) => r.id),
      );
      return { rows, outcome };
    });
    if (!result) return { ...none, skipped: true };
    const { rows, outcome } = result;
    for (const row of outcome.published) this.options.metrics.eventsPublished.inc({ event: row.event });
    if (outcome.held > 0) {
      this.natsOutage.failed(outcome.error, 'events could not be published to NATS; they stay in the outbox and will be retried in order');
    } else if (outcome.published.length > 0) {
      this.natsOutage.recovered('publishing events to NATS again');
    }
    return { skipped: false, read: rows.length, published: outcome.published.length, duplicates: outcome.duplicates, held: outcome.held };
  }

  /**
   * This replica committed events: the next pass starts now rather than at the end of the poll
   * period (at idle the period was most of the delay from a commit to NATS: 28 to 32 ms of 50),
   * but no sooner than MIN_PASS_GAP_MS after the last one began, so that under load the passes
   * stay batches (at most 1,000 / MIN_PASS_GAP_MS a second) instead of one per request.
   */
  eventsCommitted(): void {
    if (this.nudgeTimer || this.stopped) return;
    const wait = this.lastPassAt + MIN_PASS_GAP_MS - performance.now();
    if (wait <= 0) {
      this.nudge();
      return;
    }
    this.nudgeTimer = setTimeout(() => {
      this.nudgeTimer = null;
      this.nudge();
    }, wait);
    this.nudgeTimer.unref();
  }

  /** A full, clean batch means more may be waiting: go again without sleeping. */
  protected override delayAfter(batch: BatchResult | undefined): number {
    return batch && batch.read >= this.batchSize && batch.held === 0 ? 0 : this.pollIntervalMs;
  }
}

/** Refreshes the backlog gauges (how many events are owed, how old the oldest is), also while NATS is down, when they matter. */
class OutboxBacklogSampler extends BackgroundService<void> {
  constructor(
    private readonly db: Db,
    private readonly metrics: Metrics,
    intervalMs: number,
    logger: Logger,
  ) {
    super('outbox backlog sampler', { intervalMs, runAtStart: true }, logger);
  }

  async runOnce(): Promise<void> {
    const backlog = await q.readBacklog(this.db);
    this.metrics.outboxBacklog.set(backlog.events);
    this.metrics.outboxLagSeconds.set(backlog.oldestAgeSeconds);
  }
}
