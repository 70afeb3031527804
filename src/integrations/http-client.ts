import type { z } from 'zod';
import type { Metrics } from '../observability/metrics.js';

/** The external services Dispatch calls; also the `service` label of the integration metrics. */
export type IntegrationService = 'warren' | 'promptforge';

/**
 * Why a call failed. `timeout`, `network` and `server_error` are retried; the others are not,
 * because asking again would get the same answer.
 */
export type IntegrationErrorReason =
  | 'timeout'
  | 'network'
  | 'server_error'
  | 'client_error'
  | 'invalid_response'
  | 'aborted';

/** The one error type of the HTTP clients: callers branch on `reason`, never on message text. */
export class IntegrationError extends Error {
  override name = 'IntegrationError';
  constructor(
    readonly service: IntegrationService,
    readonly reason: IntegrationErrorReason,
    message: string,
    /** HTTP status when the service answered, else undefined. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Whether a failure of this kind may succeed if the same request is sent again. */
  get retryable(): boolean {
    return this.reason === 'timeout' || this.reason === 'network' || this.reason === 'server_error';
  }
}

export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Three tries spaced about 100 ms and 200 ms apart: enough to ride over a restarting pod or a
 * dropped keep-alive socket, short enough that a sync tick is never held for long. A longer outage
 * is the caller's business (the directory sync simply tries again on its next tick).
 */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 };

/**
 * Delay before retry number `retry` (0 for the first retry): min(max, base x 2^retry) with equal
 * jitter (half fixed, half random), so replicas that failed together do not retry together.
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

export interface IntegrationClientOptions {
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>` when non-empty; never logged or put in an error. */
  token?: string;
  /** Per-attempt limit, reading the body included. */
  timeoutMs: number;
  fetch?: typeof globalThis.fetch;
  retry?: Partial<RetryPolicy>;
  /** When given, every call sets integrationUp and counts integrationErrors. */
  metrics?: Pick<Metrics, 'integrationErrors' | 'integrationUp'>;
  /** Injected by tests to skip real waiting between retries. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

export interface JsonRequest<T> {
  method: 'GET' | 'POST';
  /** Path below baseUrl, already URL-encoded. */
  path: string;
  schema: z.ZodType<T>;
  /** Extra cancellation, e.g. the owner shutting down; aborting is never retried. */
  signal?: AbortSignal;
  /** Answer `null` instead of throwing for these statuses (e.g. 404 for "no such agent"). */
  nullOn?: readonly number[];
  /**
   * For commands whose answer the contract does not specify: an empty or non-JSON body is `null`
   * instead of an error (the schema still decides what a JSON body means).
   */
  answerOptional?: boolean;
}

export interface JsonHttpClient {
  request<T>(request: JsonRequest<T>): Promise<T | null>;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A short description of a low-level fetch failure: the errno code when Node gives one. */
function describeCause(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}

function joinUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/**
 * A JSON-over-HTTP client for one service: bearer token, a timeout per attempt, bounded retries
 * with backoff on network errors, timeouts and 5xx, and the answer validated with zod. Every
 * failure comes out as an IntegrationError; nothing here logs (callers decide what an outage is).
 */
export function createJsonHttpClient(service: IntegrationService, options: IntegrationClientOptions): JsonHttpClient {
  const doFetch = options.fetch ?? globalThis.fetch;
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;

  async function attempt<T>(request: JsonRequest<T>): Promise<T | null> {
    const what = `${service} ${request.method} ${request.path}`;
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout;
    let text: string;
    let status: number;
    try {
      const response = await doFetch(joinUrl(options.baseUrl, request.path), {
        method: request.method,
        headers,
        signal,
      });
      status = response.status;
      // Read the body under the same signal: a server that sends headers and then stalls is as
      // dead as one that never answers.
      text = await response.text();
    } catch (error) {
      if (request.signal?.aborted) {
        throw new IntegrationError(service, 'aborted', `${what}: aborted`, undefined, { cause: error });
      }
      if (timeout.aborted) {
        throw new IntegrationError(service, 'timeout', `${what}: no answer within ${options.timeoutMs} ms`, undefined, {
          cause: error,
        });
      }
      throw new IntegrationError(service, 'network', `${what}: ${describeCause(error)}`, undefined, { cause: error });
    }
    if (request.nullOn?.includes(status)) return null;
    if (status >= 500) throw new IntegrationError(service, 'server_error', `${what}: HTTP ${status}`, status);
    if (status < 200 || status >= 300) throw new IntegrationError(service, 'client_error', `${what}: HTTP ${status}`, status);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      if (request.answerOptional) return null;
      throw new IntegrationError(service, 'invalid_response', `${what}: answer is not JSON`, status);
    }
    const parsed = request.schema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unexpected shape';
      throw new IntegrationError(service, 'invalid_response', `${what}: unexpected answer (${where})`, status);
    }
    return parsed.data;
  }

  function record(error: IntegrationError | null): void {
    if (!options.metrics) return;
    if (error === null) {
      options.metrics.integrationUp.set({ service }, 1);
      return;
    }
    if (error.reason === 'aborted') return;
    options.metrics.integrationErrors.inc({ service, reason: error.reason });
    // A 4xx is an answer: the service is up, the request was wrong (or the agent is unknown).
    options.metrics.integrationUp.set({ service }, error.reason === 'client_error' ? 1 : 0);
  }

  return {
    async request<T>(request: JsonRequest<T>): Promise<T | null> {
      for (let tried = 1; ; tried++) {
        try {
          const result = await attempt(request);
          record(null);
          return result;
        } catch (error) {
          const failure = error as IntegrationError;
          if (!failure.retryable || tried >= policy.attempts) {
            record(failure);
            throw failure;
          }
          try {
            await sleep(backoffDelayMs(tried - 1, policy, random), request.signal);
          } catch (abortReason) {
            throw new IntegrationError(service, 'aborted', `${service} ${request.method} ${request.path}: aborted`, undefined, {
              cause: abortReason,
            });
          }
        }
      }
    },
  };
}
