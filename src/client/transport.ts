import { DispatchApiError, DispatchUnreachableError } from './errors.js';
import { fetchHttp, nodeHttp, type HttpReply, type HttpSend } from './http.js';
import type { ErrorBody } from './types.js';

export interface RetryOptions {
  /** Retries after the first try (429, 503, no connection); 0 turns retrying off. Default 4. */
  retries?: number;
  /** First backoff when the server gives no Retry-After, doubled each time (with jitter). Default 200 ms. */
  baseDelayMs?: number;
  /** The longest wait between two tries; a Retry-After beyond it is not waited for. Default 30 s. */
  maxDelayMs?: number;
}

export interface TransportOptions {
  /** One replica's URL, or several: a call that cannot connect (or gets 503) moves on to the next. */
  url: string | readonly string[];
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Sent as `X-Agent-ID`: the agent acted as (header mode; an admin acting for an agent in token mode). */
  agent?: string;
  retry?: RetryOptions;
  /** Time for one try of one call, response body included. Default 30 s. */
  timeoutMs?: number;
  /** Another fetch (a proxy's, a test's). By default node:http where the runtime has it, else the global fetch. */
  fetch?: typeof fetch;
}

export interface CallOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface CallResult<T> {
  status: number;
  /** A header of the answer, null when absent. */
  header(name: string): string | null;
  body: T;
  /** How many tries it took (1: answered at the first). */
  tries: number;
}

const RETRYABLE_STATUS = new Set([429, 503]);

/** Retry-After in milliseconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A signal that aborts after `ms` (with a TimeoutError, as AbortSignal.timeout does) or when
 * `outer` aborts; `clear()` once the call is over. AbortSignal.timeout and AbortSignal.any make
 * transferable signals, and building those was 5% of an agent process's CPU under load (V8
 * profile of the round-trip benchmark, Node 20): one per call adds up at a thousand calls a second.
 */
export function deadlineSignal(ms: number, outer?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(outer!.reason);
  const timer = setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
  if (outer?.aborted) controller.abort(outer.reason);
  else outer?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    },
  };
}

/** Exponential backoff with "equal jitter": half fixed, half random, so a swarm spreads out. */
export function backoffMs(tryIndex: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** tryIndex);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

async function errorFrom(response: HttpReply): Promise<DispatchApiError> {
  const text = await response.text().catch(() => '');
  const retryAfter = parseRetryAfter(response.header('retry-after'));
  const requestId = response.header('x-request-id') ?? undefined;
  try {
    const { error } = JSON.parse(text) as ErrorBody;
    if (typeof error?.code === 'string' && typeof error.message === 'string') {
      return new DispatchApiError(response.status, error.code, error.message, error.details ?? [], retryAfter, requestId);
    }
  } catch {
    // Not the API's error shape: a proxy or load balancer answered.
  }
  const what = text.trim().slice(0, 200) || response.statusText;
  return new DispatchApiError(response.status, `http_${response.status}`, `HTTP ${response.status}${what ? `: ${what}` : ''}`, [], retryAfter, requestId);
}

/**
 * HTTP to one Dispatch (or several replicas of it): JSON in and out, the API's errors thrown as
 * DispatchApiError, and retries where a retry is safe to make and likely to succeed: 429 and 503
 * (after Retry-After when the server says how long, within `maxDelayMs`) and calls that got no
 * answer at all (moving on to the next URL). Retrying a write is safe because every write of the
 * API is either idempotent (PUT, DELETE, PATCH, drain) or guarded: create carries an
 * Idempotency-Key, and a worker call repeated after its first try took effect answers 409, which
 * the caller resolves from the audit trail (see DispatchClient).
 */
export class Transport {
  readonly urls: readonly string[];
  private current = 0;
  private readonly send: HttpSend;
  private readonly retries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: TransportOptions) {
    const urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (urls.length === 0) throw new TypeError('Dispatch client: give at least one url');
    this.urls = urls.map((u) => u.replace(/\/+$/, ''));
    this.send = (options.fetch && fetchHttp(options.fetch)) ?? nodeHttp() ?? fetchHttp(globalThis.fetch.bind(globalThis));
    this.retries = options.retry?.retries ?? 4;
    this.baseDelayMs = options.retry?.baseDelayMs ?? 200;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  get agent(): string | undefined {
    return this.options.agent;
  }

  /** The URL calls go to now (the last one that answered). */
  get baseUrl(): string {
    return this.urls[this.current]!;
  }

  /** Moves on to the next replica after this one failed to answer. */
  rotate(): void {
    this.current = (this.current + 1) % this.urls.length;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (this.options.agent) headers['x-agent-id'] = this.options.agent;
    return headers;
  }

  /** How long to wait before try `tryIndex + 1`, or undefined when it is not worth waiting for. */
  retryDelay(tryIndex: number, retryAfterMs: number | undefined): number | undefined {
    if (tryIndex >= this.retries) return undefined;
    if (retryAfterMs !== undefined) return retryAfterMs <= this.maxDelayMs ? retryAfterMs : undefined;
    return backoffMs(tryIndex, this.baseDelayMs, this.maxDelayMs);
  }

  url(path: string, query?: CallOptions['query']): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) params.set(key, String(value));
    const search = params.toString();
    return `${this.baseUrl}${path}${search ? `?${search}` : ''}`;
  }

  /** One API call, retried as the class comment says; resolves with the parsed JSON body. */
  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<CallResult<T>> {
    const headers = this.headers(options.headers);
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    for (let tryIndex = 0; ; tryIndex++) {
      const deadline = deadlineSignal(this.timeoutMs, options.signal);
      let response: HttpReply;
      let text: string;
      try {
        response = await this.send({ method, url: this.url(path, options.query), headers, body, signal: deadline.signal });
        if (!response.ok) {
          const error = await errorFrom(response);
          if (!RETRYABLE_STATUS.has(response.status)) throw error;
          // A replica that says it is unavailable may be the only one that is: try the next.
          if (response.status === 503) this.rotate();
          const delay = this.retryDelay(tryIndex, error.retryAfterMs);
          if (delay === undefined) throw error;
          await sleep(delay, options.signal);
          continue;
        }
        text = await response.text();
      } catch (error) {
        if (error instanceof DispatchApiError || options.signal?.aborted) throw error;
        // No answer (refused, reset, timed out): the next replica, after a backoff once all were tried.
        this.rotate();
        const delay = this.retryDelay(tryIndex, undefined);
        if (delay === undefined) throw new DispatchUnreachableError(this.urls, error);
        await sleep(this.current === 0 ? delay : 0, options.signal);
        continue;
      } finally {
        deadline.clear();
      }
      return { status: response.status, header: (name) => response.header(name), body: (text ? JSON.parse(text) : null) as T, tries: tryIndex + 1 };
    }
  }

  /**
   * Opens a streaming GET (the assignment stream) on the current URL: one try, the API's error
   * thrown as DispatchApiError, no answer as DispatchUnreachableError (after moving to the next URL).
   */
  async open(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<HttpReply> {
    let response: HttpReply;
    try {
      response = await this.send({ method: 'GET', url: this.url(path), headers: this.headers(headers), signal });
    } catch (error) {
      if (signal.aborted) throw error;
      this.rotate();
      throw new DispatchUnreachableError(this.urls, error);
    }
    if (!response.ok) {
      if (response.status === 503) this.rotate();
      throw await errorFrom(response);
    }
    return response;
  }
}
