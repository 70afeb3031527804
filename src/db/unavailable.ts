import { hasErrorCode, inSqlStateClass, SQLSTATE_CLASS } from './pg-errors.js';

/**
 * PostgreSQL being unreachable (restart, failover, pool exhausted) is not the caller's fault and
 * not a bug: the API answers 503 with Retry-After so clients back off and retry, instead of a
 * 500; the group-commit batcher fails a whole batch at once rather than retrying row by row.
 */
const UNAVAILABLE_NODE_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'];

export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if (hasErrorCode(error, ...UNAVAILABLE_NODE_CODES)) return true;
  const { connectionException, operatorIntervention, insufficientResources } = SQLSTATE_CLASS;
  if (inSqlStateClass(error, connectionException, operatorIntervention, insufficientResources)) return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(message);
}
