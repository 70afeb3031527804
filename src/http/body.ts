import type { Context } from 'hono';
import type { z } from 'zod';
import { DispatchError, validationError } from '../domain/errors.js';
import { parseJsonInput } from '../domain/json-input.js';
import { unstorableText } from '../domain/storable.js';

/** application/json, or a structured `+json` type, with or without parameters such as charset. */
const JSON_MEDIA_TYPE = /^\s*application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;

/**
 * The body as JSON text. An empty body counts as `{}` so endpoints whose fields are all optional
 * (progress, cancel-free PATCH) accept a bare POST.
 */
export async function readBodyText(c: Context): Promise<string> {
  const text = await c.req.text();
  if (text.trim() === '') return '{}';
  if (!JSON_MEDIA_TYPE.test(c.req.header('content-type') ?? '')) {
    throw new DispatchError('unsupported_media_type', 'request body must be JSON, sent as Content-Type: application/json', [
      { field: 'Content-Type', message: 'must be application/json' },
    ]);
  }
  return text;
}

/** Reads and validates a JSON body (see parseJsonInput). */
export async function readJsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  return parseJsonInput(await readBodyText(c), schema);
}

/** Validates query parameters (first value of each) against a schema. */
export function readQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const query = c.req.query();
  for (const [key, value] of Object.entries(query)) {
    const problem = unstorableText(value);
    if (problem) throw new DispatchError('validation_failed', `invalid query: query.${key}`, [{ field: `query.${key}`, message: problem }]);
  }
  const parsed = schema.safeParse(query);
  if (!parsed.success) throw validationError(parsed.error, 'query', 'query');
  return parsed.data;
}
