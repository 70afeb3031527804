import type { Context } from 'hono';
import type { z } from 'zod';
import { DispatchError, validationError } from './errors.js';

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
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw validationError(parsed.error, 'request body');
  return parsed.data;
}

/** Validates query parameters (first value of each) against a schema. */
export function readQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw validationError(parsed.error, 'query', 'query');
  return parsed.data;
}
