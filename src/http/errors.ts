import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { DispatchError, ErrorCode, ErrorJson } from '../domain/errors.js';

/** The HTTP status of each error code (openapi.json documents each status with its codes). */
export const STATUS_BY_CODE: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_json: 400,
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  stale_attempt: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

export function errorBody(error: DispatchError): ErrorJson {
  return { error: { code: error.code, message: error.message, details: error.details } };
}

/** Every error answer of the API: the status its code maps to, the body every client parses. */
export function renderError(c: Context, error: DispatchError): Response {
  return c.json(errorBody(error), STATUS_BY_CODE[error.code]);
}
