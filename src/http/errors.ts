import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';

export type ErrorCode =
  | 'invalid_json'
  | 'validation_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'stale_attempt'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

const STATUS_BY_CODE: Record<ErrorCode, ContentfulStatusCode> = {
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

export interface ErrorDetail {
  field: string;
  message: string;
}

/** The one error type of the service; `renderError` turns it into the JSON every client sees. */
export class DispatchError extends Error {
  override name = 'DispatchError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }

  get status(): ContentfulStatusCode {
    return STATUS_BY_CODE[this.code];
  }
}

/** Zod issues as `{field, message}` pairs; an unknown key is named as its own field. */
export function detailsFromZod(error: z.ZodError, prefix = ''): ErrorDetail[] {
  return error.issues.flatMap((issue) => {
    const base = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: base ? `${base}.${key}` : key, message: 'unknown field' }));
    }
    return [{ field: base || '(body)', message: issue.message }];
  });
}

export function validationError(error: z.ZodError, what: string, prefix = ''): DispatchError {
  const details = detailsFromZod(error, prefix);
  const fields = [...new Set(details.map((d) => d.field))].join(', ');
  return new DispatchError('validation_failed', `invalid ${what}: ${fields}`, details);
}

export function errorBody(error: DispatchError) {
  return { error: { code: error.code, message: error.message, details: error.details } };
}

export function renderError(c: Context, error: DispatchError): Response {
  return c.json(errorBody(error), error.status);
}
