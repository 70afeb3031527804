import { DispatchApiError } from './errors.js';
import { parseEventStream } from './sse.js';
import { backoffMs, sleep, type Transport } from './transport.js';
import type { Task } from './types.js';

/** Why a task was taken from the agent. */
export type TakenAwayReason = 'cancelled' | 'reassigned' | 'timeout';

/** An event of an agent's assignment stream; `id` is the audit event id (what resuming sends back). */
export type AssignmentEvent =
  | { type: 'assigned'; id: string; task: Task }
  | { type: TakenAwayReason; id: string; taskId: string; attempt: number | null; data: unknown };

export interface SubscribeOptions {
  /** Resume after this event id (one the stream sent earlier): only what came after it is sent. */
  lastEventId?: string;
  /** Closes the subscription. */
  signal?: AbortSignal;
  /** Callback style: called for each event in order (awaited); without it, iterate the subscription. */
  onEvent?: (event: AssignmentEvent) => void | Promise<void>;
  /** Told each time a connection is open (the first, and each reconnection). */
  onConnect?: (reconnected: boolean) => void;
  /** Told of each lost connection and when the next try is (it is retried until closed). */
  onReconnect?: (error: unknown, retryInMs: number) => void;
  /** Longest wait between reconnections. Default 10 s. */
  maxBackoffMs?: number;
  /** No byte for this long (keepalives come at least every 15 s) means a dead connection. Default 45 s. */
  idleTimeoutMs?: number;
}

const TAKEN_AWAY: ReadonlySet<string> = new Set(['cancelled', 'reassigned', 'timeout']);
/** Errors no reconnection can cure: the subscription ends with them. */
const FATAL_STATUS = new Set([400, 401, 403, 404, 406, 409, 415]);
const BASE_BACKOFF_MS = 250;
/** A connection open this long counts as a success: the backoff starts again from the base. */
const HEALTHY_AFTER_MS = 5_000;
/** Assignments remembered to drop a repeat (the held tasks sent again on a reconnect). */
const SEEN_LIMIT = 10_000;

/**
 * An event of the stream (or an entry of a long poll) as the client shows it. Every event's data
 * is the task (as GET /api/v1/tasks/:id shows it) with the attempt the event is about; an event
 * type this client does not know is skipped.
 */
export function toAssignmentEvent(type: string, id: string, parsed: Record<string, unknown>): AssignmentEvent | undefined {
  if (type === 'assigned') {
    const task = (parsed.task ?? parsed) as Task;
    return { type, id, task };
  }
  if (!TAKEN_AWAY.has(type)) return undefined;
  const task = parsed.task as Record<string, unknown> | undefined;
  const taskId = String(parsed.task_id ?? task?.id ?? parsed.id);
  const attempt = (parsed.attempt ?? task?.attempt ?? null) as number | null;
  return { type: type as TakenAwayReason, id, taskId, attempt, data: parsed };
}

/**
 * An agent's assignment stream, held open across lost connections: each reconnection (to the next
 * replica when there are several) carries Last-Event-ID, so events missed meanwhile are replayed,
 * and an assignment already delivered (the same task and attempt) is not delivered again.
 * Iterate it (`for await`), or give `onEvent`; `close()` ends it either way.
 */
export class AssignmentSubscription implements AsyncIterable<AssignmentEvent> {
  /** The id of the last event delivered: where a new subscription would resume. */
  lastEventId: string | undefined;
  /** Callback style: settles when the subscription ends; rejects with the error that ended it. */
  readonly done: Promise<void>;
  private readonly controller = new AbortController();
  private readonly seen = new Set<string>();
  private iterating = false;
  /** The reconnection delay the server asked for (`retry:`): the base of the backoff. */
  private serverRetryMs: number | undefined;
  private connections = 0;

  constructor(
    private readonly transport: Transport,
    private readonly path: string,
    private readonly options: SubscribeOptions,
    private readonly observe: (event: AssignmentEvent) => void,
  ) {
    this.lastEventId = options.lastEventId;
    if (options.signal) {
      if (options.signal.aborted) this.close();
      else options.signal.addEventListener('abort', () => this.close(), { once: true });
    }
    this.done = options.onEvent ? this.pump(options.onEvent) : Promise.resolve();
  }

  close(): void {
    this.controller.abort(new Error('subscription closed'));
  }

  get closed(): boolean {
    return this.controller.signal.aborted;
  }

  [Symbol.asyncIterator](): AsyncIterator<AssignmentEvent> {
    if (this.iterating || this.options.onEvent) throw new Error('an assignment subscription is consumed once: by onEvent or by one loop');
    this.iterating = true;
    return this.events();
  }

  private async pump(onEvent: (event: AssignmentEvent) => void | Promise<void>): Promise<void> {
    this.iterating = true;
    for await (const event of this.events()) await onEvent(event);
  }

  private async *events(): AsyncGenerator<AssignmentEvent> {
    const maxBackoff = this.options.maxBackoffMs ?? 10_000;
    let failures = 0;
    while (!this.closed) {
      const opened = Date.now();
      let retryAfterMs: number | undefined;
      try {
        for await (const event of this.connection()) {
          failures = 0;
          yield event;
        }
        if (this.closed) return;
        throw new Error('the assignment stream ended');
      } catch (error) {
        if (this.closed) return;
        if (error instanceof DispatchApiError) {
          if (FATAL_STATUS.has(error.status)) throw error;
          retryAfterMs = error.retryAfterMs;
        }
        if (Date.now() - opened >= HEALTHY_AFTER_MS) failures = 0;
        const wait = retryAfterMs ?? backoffMs(failures, this.serverRetryMs ?? BASE_BACKOFF_MS, maxBackoff);
        failures++;
        this.options.onReconnect?.(error, wait);
        try {
          await sleep(wait, this.controller.signal);
        } catch {
          return;
        }
      }
    }
  }

  /** One connection: its events, new ones only. */
  private async *connection(): AsyncGenerator<AssignmentEvent> {
    const idle = new AbortController();
    const signal = AbortSignal.any([this.controller.signal, idle.signal]);
    const idleTimeoutMs = this.options.idleTimeoutMs ?? 45_000;
    const expire = () => idle.abort(new Error(`no keepalive for ${idleTimeoutMs} ms`));
    let timer = setTimeout(expire, idleTimeoutMs);
    // Every chunk (keepalives included) restarts the idle timer.
    async function* touched(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
      for await (const chunk of chunks) {
        clearTimeout(timer);
        timer = setTimeout(expire, idleTimeoutMs);
        yield chunk;
      }
    }
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (this.lastEventId !== undefined) headers['last-event-id'] = this.lastEventId;
      const response = await this.transport.open(this.path, headers, signal);
      this.options.onConnect?.(this.connections++ > 0);
      const onRetry = (ms: number) => void (this.serverRetryMs = ms);
      for await (const sse of parseEventStream(touched(response.chunks()), this.lastEventId ?? '', onRetry)) {
        const event = toAssignmentEvent(sse.event, sse.lastEventId, JSON.parse(sse.data) as Record<string, unknown>);
        if (sse.lastEventId !== '') this.lastEventId = sse.lastEventId;
        if (!event || this.repeated(event)) continue;
        this.observe(event);
        yield event;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether this assignment (task and attempt) was delivered already. */
  private repeated(event: AssignmentEvent): boolean {
    if (event.type !== 'assigned') return false;
    const key = `${event.task.id}:${event.task.attempt}`;
    if (this.seen.has(key)) return true;
    this.seen.add(key);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value!);
    return false;
  }
}
