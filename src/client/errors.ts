import type { ErrorCode, ErrorDetail } from './types.js';

/** An error answer of the API: its HTTP status, its code, its message and the fields it names. */
export class DispatchApiError extends Error {
  override name = 'DispatchApiError';
  constructor(
    readonly status: number,
    /** The API's code (`not_found`, `stale_attempt`, …); `http_<status>` for an answer not in the API's shape (a proxy's). */
    readonly code: ErrorCode | `http_${number}`,
    message: string,
    /** The fields the API found wrong, each with what is wrong with it. */
    readonly details: ErrorDetail[] = [],
    /** Retry-After of a 429 or 503, in milliseconds, when the server sent one. */
    readonly retryAfterMs: number | undefined = undefined,
    readonly requestId: string | undefined = undefined,
  ) {
    super(message);
  }

  /** The names of the fields the API found wrong. */
  get fields(): string[] {
    return this.details.map((d) => d.field);
  }
}

/** No answer at all: every URL refused the connection, reset it or timed out, retries included. */
export class DispatchUnreachableError extends Error {
  override name = 'DispatchUnreachableError';
  constructor(
    readonly urls: readonly string[],
    override readonly cause: unknown,
  ) {
    super(`cannot reach Dispatch at ${urls.join(', ')}: ${describeCause(cause)}`);
  }
}

function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // fetch() says only "fetch failed"; the reason (ECONNREFUSED…) is its cause.
  const inner = (cause as { cause?: unknown }).cause;
  return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
}

/**
 * Thrown by an agent's handler to fail its task with a say on retrying: `retryable: false` fails
 * the task for good; any other error thrown is a retryable failure.
 */
export class TaskError extends Error {
  override name = 'TaskError';
  readonly retryable: boolean;
  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable ?? true;
  }
}
