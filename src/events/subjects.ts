/**
 * Every NATS subject Dispatch publishes or consumes, and how a row of dispatch_task_events becomes
 * a message. Pure: no connection, no database, so the mapping is unit-tested on its own.
 *
 * Task events go to `swarm.task.<task id>.<name>` with the stored payload as the body, plus:
 *   task_id, event_id (the row's uuid, also the JetStream message id) and occurred_at (the
 *   commit-time stamp of the row, ISO 8601). A task created with a W3C `traceparent` has it as a
 *   header of each of its messages.
 * Names follow the reference where it has one; the other stored events keep their own name:
 *   created, assigned, progress, completed, cancelled, unmatched, reassigned   as stored
 *   failed        terminal failure, `retrying: false`
 *   fail_retry    -> `failed` with `retrying: true`: the worker reported a failure and the task went
 *                 back to pending for another attempt. Same subject as a final failure, so a v1
 *                 listener on `.failed` still hears every failure report; read `retrying` to tell
 *                 whether the task is finished.
 *   timeout_retry / timeout_exhausted -> `timeout` {task_id, retry_count, max_retries} with
 *                 `outcome: 'retry' | 'exhausted'` and `retrying` (same rule as `failed`).
 *   expired       -> `timeout` {task_id, reason: 'expired', start_by, error} with `outcome: 'expired'`,
 *                 `retrying: false`: the task was still pending at its start_by and ended.
 *   anything else (context_updated, wake_requested, wake_timeout, start_overdue, ...) -> its own name.
 */

export const EVENT_STREAM = 'DISPATCH_EVENTS';
export const TASK_SUBJECTS = 'swarm.task.>';
export const DISPATCH_SUBJECTS = 'swarm.dispatch.>';
export const EVENT_STREAM_SUBJECTS = [TASK_SUBJECTS, DISPATCH_SUBJECTS] as const;

/** Consumed: a task to create, from any agent or service of the swarm. */
export const TASK_REQUEST_SUBJECT = 'swarm.task.request';
/** Published: a `swarm.task.request` that could not become a task, and why. */
export const TASK_REJECTED_SUBJECT = 'swarm.dispatch.rejected';
/** Published: queue statistics, every hermes.stats_interval_ms, by one replica. */
export const STATS_SUBJECT = 'swarm.dispatch.stats';
/**
 * Published: a scope paused, resumed or its limits changed (dispatch_scope_events), as
 * `swarm.dispatch.scope.<paused|resumed|limits_changed>` with the scope in the body: scope names
 * are free text (spaces, dots), which a subject token cannot carry.
 */
export const SCOPE_EVENTS_SUBJECT = 'swarm.dispatch.scope';
/** Consumed: Warren's lifecycle notices, `swarm.agent.<name>.<started|ready|degraded|stopped>`. */
export const AGENT_EVENTS_SUBJECT = 'swarm.agent.*.*';

/** The durable JetStream consumer all replicas share to take `swarm.task.request` messages. */
export const TASK_REQUEST_CONSUMER = 'dispatch-task-requests';

export function taskSubject(taskId: string, name: string): string {
  return `swarm.task.${taskId}.${name}`;
}

export function agentSubject(agent: string, lifecycle: AgentLifecycle): string {
  return `swarm.agent.${agent}.${lifecycle}`;
}

export const AGENT_LIFECYCLES = ['started', 'ready', 'degraded', 'stopped'] as const;
export type AgentLifecycle = (typeof AGENT_LIFECYCLES)[number];

/** What a stored event row carries into its message. */
export interface StoredTaskEvent {
  event_id: string;
  task_id: string;
  event: string;
  payload: unknown;
  created_at: Date;
  /** The task's W3C traceparent, sent on as a message header. */
  traceparent?: string | null;
}

export interface OutgoingMessage {
  subject: string;
  /** JetStream message id (Nats-Msg-Id): the stream drops a second copy within its duplicate window. */
  msgId: string;
  body: Record<string, unknown>;
  /** NATS message headers besides Nats-Msg-Id (the task's `traceparent`). */
  headers?: Record<string, string>;
}

const asObject = (payload: unknown): Record<string, unknown> =>
  payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? { ...(payload as Record<string, unknown>) } : { payload };

/** The subject name and body fields that a stored event name maps to. */
function rename(event: string): { name: string; extra: Record<string, unknown> } {
  switch (event) {
    case 'failed':
      return { name: 'failed', extra: { retrying: false } };
    case 'fail_retry':
      return { name: 'failed', extra: { retrying: true } };
    case 'timeout_retry':
      return { name: 'timeout', extra: { outcome: 'retry', retrying: true } };
    case 'timeout_exhausted':
      return { name: 'timeout', extra: { outcome: 'exhausted', retrying: false } };
    case 'expired':
      return { name: 'timeout', extra: { outcome: 'expired', retrying: false } };
    default:
      return { name: event, extra: {} };
  }
}

/**
 * The message for one stored task event. The envelope fields (task_id, event_id, occurred_at)
 * are written last so a worker's progress payload cannot forge them.
 */
export function taskEventMessage(row: StoredTaskEvent): OutgoingMessage {
  const { name, extra } = rename(row.event);
  return {
    subject: taskSubject(row.task_id, name),
    msgId: row.event_id,
    body: {
      ...asObject(row.payload),
      ...extra,
      task_id: row.task_id,
      event_id: row.event_id,
      occurred_at: row.created_at.toISOString(),
    },
    ...(row.traceparent ? { headers: { traceparent: row.traceparent } } : {}),
  };
}

/** What a stored scope event carries into its message. */
export interface StoredScopeEvent {
  event_id: string;
  scope: string;
  event: string;
  payload: unknown;
  created_at: Date;
}

/** The message for one scope event; the envelope fields are written last, as for task events. */
export function scopeEventMessage(row: StoredScopeEvent): OutgoingMessage {
  return {
    subject: `${SCOPE_EVENTS_SUBJECT}.${row.event}`,
    msgId: row.event_id,
    body: { ...asObject(row.payload), scope: row.scope, event_id: row.event_id, occurred_at: row.created_at.toISOString() },
  };
}

/** Reads `swarm.agent.<name>.<lifecycle>`; null for any other agent subject. */
export function parseAgentSubject(subject: string): { agent: string; lifecycle: AgentLifecycle } | null {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[0] !== 'swarm' || parts[1] !== 'agent') return null;
  const lifecycle = parts[3] as AgentLifecycle;
  if (!AGENT_LIFECYCLES.includes(lifecycle) || !parts[2]) return null;
  return { agent: parts[2], lifecycle };
}

/**
 * True when the subject filter `pattern` matches every subject `filter` matches (`swarm.>` covers
 * `swarm.task.>`), so a stream that already captures ours is not given an overlapping subject.
 */
export function subjectCovers(pattern: string, filter: string): boolean {
  const p = pattern.split('.');
  const f = filter.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === '>') return i < f.length;
    const other = f[i];
    if (other === undefined) return false;
    if (token === '*') {
      if (other === '>') return false;
      continue;
    }
    if (token !== other) return false;
  }
  return p.length === f.length;
}

/** Fields of a too-large body kept when it is cut down (their JSON is at most this long). */
const KEPT_FIELD_BYTES = 512;

/**
 * JSON bytes of a message body. A body over `maxBytes` (a huge result or progress payload would
 * exceed the server's max_payload and block its task's events for ever) is replaced by its small
 * fields plus `truncated: true` and `original_bytes`; the full data stays readable over REST.
 */
export function encodeBody(body: Record<string, unknown>, maxBytes: number): Uint8Array {
  const full = Buffer.from(JSON.stringify(body));
  if (full.length <= maxBytes) return full;
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    const json = JSON.stringify(value);
    if (json !== undefined && json.length <= KEPT_FIELD_BYTES) kept[key] = value;
  }
  return Buffer.from(JSON.stringify({ ...kept, truncated: true, original_bytes: full.length }));
}
