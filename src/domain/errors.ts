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

export interface ErrorDetail {
  field: string;
  message: string;
}

/** The one error type of the service; `http/errors.ts` renders it as the JSON every client sees. */
export class DispatchError extends Error {
  override name = 'DispatchError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
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
