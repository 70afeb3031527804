import { z } from 'zod';

/** Every error code the API answers with (src/http/errors.ts maps each to its HTTP status). */
export const ERROR_CODES = [
  'invalid_json',
  'validation_failed',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'stale_attempt',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

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

/** The body of every error answer, as clients parse it (documented in openapi.json as `Error`). */
export const errorJsonSchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string().min(1),
      details: z.array(z.object({ field: z.string(), message: z.string() })).describe('One entry per offending field, header or limit; may be empty.'),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorJson = z.infer<typeof errorJsonSchema>;

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
