import type { Context } from 'hono';
import type { z } from 'zod';
import { findUnstorable, unstorableText } from '../db/storable.js';
import { DispatchError, validationError } from '../domain/errors.js';

/**
 * Reads and validates a JSON body. An empty body counts as `{}` so endpoints whose fields are all
 * optional (progress, cancel-free PATCH) accept a bare POST.
 */
export async function readJsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  let raw: unknown = {};
  if (text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new DispatchError('invalid_json', 'request body is not valid JSON', [{ field: '(body)', message: 'malformed JSON' }]);
    }
  }
  // NUL, unpaired surrogates and runaway nesting parse fine but PostgreSQL (or JSON.stringify) refuses them.
  const unstorable = findUnstorable(raw);
  if (unstorable) throw new DispatchError('validation_failed', `invalid request body: ${unstorable.field}`, [unstorable]);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw validationError(parsed.error, 'request body');
  return parsed.data;
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
