/**
 * PostgreSQL being unreachable (restart, failover, pool exhausted) is not the caller's fault and
 * not a bug: the API answers 503 with Retry-After so clients back off and retry, instead of a
 * 500; the group-commit batcher fails a whole batch at once rather than retrying row by row.
 */
const UNAVAILABLE_SQLSTATE_CLASSES = ['08', '57', '53'];
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (UNAVAILABLE_NODE_CODES.has(code)) return true;
    if (code.length === 5 && UNAVAILABLE_SQLSTATE_CLASSES.includes(code.slice(0, 2))) return true;
  }
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(message);
}
