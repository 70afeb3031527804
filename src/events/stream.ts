import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  nanos,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from 'nats';
import type { Logger } from '../observability/logger.js';
import { EVENT_STREAM, EVENT_STREAM_SUBJECTS, TASK_REQUEST_CONSUMER, TASK_REQUEST_SUBJECT, subjectCovers } from './subjects.js';

const DAY_MS = 86_400_000;
export const STREAM_MAX_AGE_MS = 30 * DAY_MS;
/**
 * How long the stream remembers a message id. The outbox republishes a batch whose "published"
 * mark was lost (replica killed after publishing, before its commit); the copy is dropped only if
 * it arrives within this window. A dead publisher's transaction is ended by Postgres within
 * idle_in_transaction_session_timeout (30 s, see outbox.queries.ts) and another replica republishes
 * at once, so 5 minutes leaves a wide margin while keeping the server's id table small.
 */
export const STREAM_DUPLICATE_WINDOW_MS = 5 * 60_000;
/** An existing stream's window below this cannot protect the outbox; it is raised to the default. */
export const MIN_DUPLICATE_WINDOW_MS = 2 * 60_000;
/** A request pulled but not acknowledged (replica died mid-way) goes to another replica after this. */
export const TASK_REQUEST_ACK_WAIT_MS = 30_000;

const ns = (ms: number) => nanos(ms);

/** The stream as Dispatch creates it when none exists. */
export function defaultStreamConfig(): Partial<StreamConfig> & { name: string } {
  return {
    name: EVENT_STREAM,
    description: 'Dispatch task lifecycle events (swarm.task.>) and service messages (swarm.dispatch.>)',
    subjects: [...EVENT_STREAM_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: ns(STREAM_MAX_AGE_MS),
    duplicate_window: ns(STREAM_DUPLICATE_WINDOW_MS),
    num_replicas: 1,
  };
}

export type StreamPlan =
  | { action: 'create'; config: Partial<StreamConfig> & { name: string } }
  | { action: 'update'; config: StreamConfig; changes: string[] }
  | { action: 'none' };

/**
 * What to do with the stream as it is. An existing stream belongs to its operator: replicas,
 * storage, limits, placement and any extra subjects are kept; only what Dispatch depends on is
 * added: our subjects (unless a broader one already covers them), a max age when it has none,
 * and a duplicate window long enough for the outbox's retries.
 */
export function planStream(existing: StreamConfig | null): StreamPlan {
  if (!existing) return { action: 'create', config: defaultStreamConfig() };
  const config: StreamConfig = { ...existing, subjects: [...(existing.subjects ?? [])] };
  const changes: string[] = [];
  for (const subject of EVENT_STREAM_SUBJECTS) {
    if (!config.subjects.some((s) => subjectCovers(s, subject))) {
      config.subjects.push(subject);
      changes.push(`subject ${subject} added`);
    }
  }
  if (!existing.max_age) {
    config.max_age = ns(STREAM_MAX_AGE_MS);
    changes.push('max_age set to 30 days');
  }
  if ((existing.duplicate_window ?? 0) < ns(MIN_DUPLICATE_WINDOW_MS)) {
    // The window may not exceed the max age.
    config.duplicate_window = Math.min(ns(STREAM_DUPLICATE_WINDOW_MS), config.max_age);
    changes.push(`duplicate_window raised to ${config.duplicate_window / 1e9} s`);
  }
  return changes.length > 0 ? { action: 'update', config, changes } : { action: 'none' };
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | null> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/** JetStream's "stream not found" (10059) and "consumer not found" (10014). */
export function isNotFound(error: unknown): boolean {
  const api = (error as { api_error?: { err_code?: number } } | undefined)?.api_error;
  if (api?.err_code === 10059 || api?.err_code === 10014) return true;
  return error instanceof Error && /not found/i.test(error.message);
}

/** Creates or adjusts DISPATCH_EVENTS; safe to call from every replica at every (re)connect. */
export async function ensureEventStream(jsm: JetStreamManager, logger: Logger): Promise<StreamInfo> {
  const existing = await streamInfo(jsm, EVENT_STREAM);
  const plan = planStream(existing?.config ?? null);
  switch (plan.action) {
    case 'none':
      return existing!;
    case 'create':
      try {
        const created = await jsm.streams.add(plan.config);
        logger.info({ stream: EVENT_STREAM }, 'JetStream stream created');
        return created;
      } catch (error) {
        // Another replica created it between our read and our add: adopt theirs.
        const raced = await streamInfo(jsm, EVENT_STREAM);
        if (raced) return await ensureEventStream(jsm, logger);
        throw error;
      }
    case 'update': {
      try {
        const updated = await jsm.streams.update(EVENT_STREAM, plan.config);
        logger.info({ stream: EVENT_STREAM, changes: plan.changes }, 'JetStream stream adjusted for Dispatch');
        return updated;
      } catch (error) {
        // Not ours to force (permissions, an overlapping stream): publish to it as it is.
        logger.warn({ stream: EVENT_STREAM, changes: plan.changes, err: error }, 'could not adjust the JetStream stream; using it as it is');
        return existing!;
      }
    }
  }
}

/**
 * The durable pull consumer the replicas share for `swarm.task.request`: the server hands each
 * message to one puller, and redelivers it if not acknowledged within the ack wait. Created to
 * start after the messages stored at creation time, so adopting a stream that already holds
 * requests (an older broker consumed them) does not replay its history; a consumer that exists is
 * used as it is.
 */
export async function ensureTaskRequestConsumer(jsm: JetStreamManager, stream: StreamInfo): Promise<void> {
  try {
    await jsm.consumers.info(EVENT_STREAM, TASK_REQUEST_CONSUMER);
    return;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  const config: Partial<ConsumerConfig> = {
    durable_name: TASK_REQUEST_CONSUMER,
    description: 'Dispatch replicas creating tasks from swarm.task.request',
    filter_subject: TASK_REQUEST_SUBJECT,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ns(TASK_REQUEST_ACK_WAIT_MS),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: stream.state.last_seq + 1,
    max_ack_pending: 1_000,
  };
  try {
    await jsm.consumers.add(EVENT_STREAM, config);
  } catch (error) {
    // A replica starting at the same moment created it with another start sequence: use theirs.
    await jsm.consumers.info(EVENT_STREAM, TASK_REQUEST_CONSUMER).catch(() => {
      throw error;
    });
  }
}
