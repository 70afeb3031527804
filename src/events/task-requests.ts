import { randomUUID } from 'node:crypto';
import type { JetStreamClient, JsMsg } from 'nats';
import type { Db } from '../db/database.js';
import type { TaskRow } from '../db/database.js';
import { DispatchError } from '../domain/errors.js';
import { findUnstorable } from '../domain/storable.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { acceptTraceparent } from '../observability/trace-context.js';
import type { Tracer } from '../observability/tracing.js';
import { submitTask, type TaskIntake, type TaskPolicy } from '../tasks/task.service.js';
import type { PublishFn } from './outbox-publisher.js';
import { BackgroundService } from '../background/service.js';
import { EVENT_STREAM, TASK_REJECTED_SUBJECT, TASK_REQUEST_CONSUMER } from './subjects.js';

/** One stored `swarm.task.request`, as much of it as creating the task needs. */
export interface TaskRequestMessage {
  data: Uint8Array;
  /** Stream sequence and store time: together they name this message for good. */
  streamSeq: number;
  timestampNanos: number;
  /** The message's W3C `traceparent` header, if any. */
  traceparent?: string;
}

export type TaskRequestOutcome =
  | { kind: 'created'; task: TaskRow }
  | { kind: 'replayed'; task: TaskRow }
  | { kind: 'rejected'; error: DispatchError; original: unknown };

/**
 * The task's Idempotency-Key: a redelivery of the same stored message (a replica died after
 * committing, before acknowledging) finds the task it already created. The store time is part of
 * it because sequences restart if the stream is ever deleted and recreated.
 */
export function requestIdempotencyKey(message: Pick<TaskRequestMessage, 'streamSeq' | 'timestampNanos'>): string {
  return `nats:${EVENT_STREAM}:${message.streamSeq}:${message.timestampNanos}`;
}

/**
 * What a rejection echoes back: the request as parsed JSON, or as text when it is not JSON or
 * holds what cannot be stored (whose JSON.stringify may throw: deep nesting).
 */
function originalOf(text: string): unknown {
  try {
    const value: unknown = JSON.parse(text);
    return findUnstorable(value) ? text : value;
  } catch {
    return text;
  }
}

/**
 * Creates the task a request asks for, through the same way in as POST /api/v1/tasks
 * (submitTask: same schema, same checks, same error details), except that the requester, which
 * REST takes from X-Agent-ID, must be in the message. A DispatchError is a rejection of this
 * request; any other error is ours (database down) and is thrown so the message is redelivered.
 */
export async function createTaskFromRequest(intake: TaskIntake, message: TaskRequestMessage): Promise<TaskRequestOutcome> {
  const text = new TextDecoder().decode(message.data);
  try {
    const outcome = await submitTask(intake, text, {
      idempotencyKey: requestIdempotencyKey(message),
      traceparent: acceptTraceparent(message.traceparent),
    });
    return { kind: outcome.replayed ? 'replayed' : 'created', task: outcome.task };
  } catch (error) {
    if (error instanceof DispatchError && error.code !== 'conflict') return { kind: 'rejected', error, original: originalOf(text) };
    throw error;
  }
}

/** The `swarm.dispatch.rejected` body. */
export function rejectionBody(error: DispatchError, original: unknown): Record<string, unknown> {
  return {
    reason: error.message,
    code: error.code,
    details: error.details,
    original,
    event_id: randomUUID(),
    occurred_at: new Date().toISOString(),
  };
}

export interface TaskRequestConsumerOptions {
  db: Db;
  policy: TaskPolicy;
  /** hermes.requesters: empty accepts any requester. */
  allowedRequesters?: readonly string[];
  tracer?: Tracer;
  publish: PublishFn;
  logger: Logger;
  metrics: Metrics;
  /** Re-provisions the stream and consumer (they were deleted, or the server lost them). */
  provision: () => Promise<void>;
  /** Messages pulled ahead per replica. */
  batch?: number;
  /** Delay before a message that failed on our side (database down) is offered again. */
  retryDelayMs?: number;
}

/**
 * Pulls `swarm.task.request` from the durable consumer every replica shares: JetStream gives each
 * message to one replica, and takes it back (redelivers) if it is not acknowledged in time. A
 * message is acknowledged only after the task's commit (or after its rejection is published).
 */
export class TaskRequestConsumer extends BackgroundService<void> {
  private js: JetStreamClient | null = null;
  private stopCurrent: (() => void) | null = null;
  private consuming = false;
  private failedSessions = 0;

  constructor(private readonly options: TaskRequestConsumerOptions) {
    // A pass is one consume session: it lasts until stopped or until the consumer goes away.
    super('task request consumer', { intervalMs: 5_000, runAtStart: true }, options.logger);
  }

  /** True while a pull loop is attached to the consumer. */
  get active(): boolean {
    return this.consuming;
  }

  /** Starts consuming on this JetStream connection. */
  consumeFrom(js: JetStreamClient): void {
    this.js = js;
    this.start();
  }

  /** Stops pulling and finishes the message in hand; pulled-ahead messages are redelivered elsewhere. */
  override async stop(): Promise<void> {
    const stopped = super.stop();
    this.stopCurrent?.();
    await stopped;
  }

  async runOnce(): Promise<void> {
    if (!this.js) return;
    if (this.failedSessions > 0) {
      await this.options.provision().catch((error: unknown) => this.options.logger.debug({ err: error }, 'could not re-provision'));
      if (this.stopped) return;
    }
    try {
      const consumer = await this.js.consumers.get(EVENT_STREAM, TASK_REQUEST_CONSUMER);
      const messages = await consumer.consume({ max_messages: this.options.batch ?? 32 });
      this.stopCurrent = () => messages.stop();
      // A stop() while the pull was being set up found nothing to stop: it would wait forever.
      if (this.stopped) messages.stop();
      // The library retries a missing consumer for ever; recreate it instead.
      void (async () => {
        for await (const status of await messages.status()) {
          if (['consumer_deleted', 'consumer_not_found', 'stream_not_found'].includes(status.type)) {
            messages.stop();
            return;
          }
        }
      })().catch(() => undefined);
      this.consuming = true;
      this.failedSessions = 0;
      for await (const message of messages) {
        await this.handle(message);
        if (this.stopped) break;
      }
    } catch (error) {
      this.options.logger.debug({ err: error }, 'task request consumer interrupted');
    } finally {
      this.consuming = false;
      this.stopCurrent = null;
    }
    this.failedSessions += 1;
  }

  /** Before the next session: a backoff from 500 ms doubling up to 5 s. */
  protected override delayAfter(): number {
    return Math.min(5_000, 250 * 2 ** Math.min(this.failedSessions, 5));
  }

  private async handle(message: JsMsg): Promise<void> {
    const { db, policy, logger, metrics, allowedRequesters, tracer } = this.options;
    const request: TaskRequestMessage = {
      data: message.data,
      streamSeq: message.seq,
      timestampNanos: message.info.timestampNanos,
      traceparent: message.headers?.get('traceparent') || undefined,
    };
    try {
      const outcome = await createTaskFromRequest({ db, policy, metrics, allowedRequesters, tracer }, request);
      if (outcome.kind === 'rejected') {
        logger.warn(
          { seq: message.seq, reason: outcome.error.message, details: outcome.error.details },
          'swarm.task.request rejected',
        );
        await this.options.publish({
          subject: TASK_REJECTED_SUBJECT,
          msgId: `rejected:${requestIdempotencyKey(request)}`,
          body: rejectionBody(outcome.error, outcome.original),
        });
      } else {
        logger.debug({ seq: message.seq, task: outcome.task.id, outcome: outcome.kind }, 'task created from swarm.task.request');
      }
      metrics.taskRequests.inc({ outcome: outcome.kind });
      message.ack();
    } catch (error) {
      metrics.taskRequests.inc({ outcome: 'error' });
      logger.warn({ err: error, seq: message.seq }, 'swarm.task.request not handled; it will be redelivered');
      message.nak(this.options.retryDelayMs ?? 2_000);
    }
  }
}
