/**
 * PostgreSQL's SQLSTATE codes that Dispatch branches on, by name
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html).
 */
export const SQLSTATE = {
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  lockNotAvailable: '55P03',
} as const;

/** SQLSTATE classes (the first two characters): every code in the class. */
export const SQLSTATE_CLASS = {
  connectionException: '08',
  insufficientResources: '53',
  operatorIntervention: '57',
} as const;

/** The `code` of an error from pg (a SQLSTATE, or a Node code such as ECONNREFUSED), if any. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** True when the error's code is one of these (SQLSTATEs, or Node's codes for a failed socket). */
export function hasErrorCode(error: unknown, ...codes: string[]): boolean {
  const code = errorCode(error);
  return code !== undefined && codes.includes(code);
}

/** True when the error's SQLSTATE is in one of these classes. */
export function inSqlStateClass(error: unknown, ...classes: string[]): boolean {
  const code = errorCode(error);
  return code !== undefined && code.length === 5 && classes.includes(code.slice(0, 2));
}
