/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` a caller sends.
 * Pure functions, used where a task comes in (REST header, NATS message header) and where
 * Dispatch's spans are made.
 */

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export interface TraceParent {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

/**
 * The traceparent to keep, or null. As the specification asks of a receiver, a malformed value
 * (or the all-zero ids, or version ff) is treated as absent rather than refused: tracing must
 * never make a request fail.
 */
export function acceptTraceparent(header: string | null | undefined): string | null {
  if (header === null || header === undefined) return null;
  const value = header.trim().toLowerCase();
  return parseTraceparent(value) ? value : null;
}

export function parseTraceparent(value: string): TraceParent | null {
  const match = TRACEPARENT.exec(value);
  if (!match) return null;
  const [, version, traceId, spanId, flags] = match as unknown as [string, string, string, string, string];
  if (version === 'ff' || /^0+$/.test(traceId) || /^0+$/.test(spanId)) return null;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}
