import type { z } from 'zod';
import { DispatchError, validationError } from './errors.js';
import { findUnstorable } from './storable.js';

/**
 * Parses and validates a JSON document a client sent (an HTTP body, a NATS message): malformed
 * JSON, values PostgreSQL would refuse and schema violations are each a DispatchError naming the
 * field, the same from every entry point.
 */
export function parseJsonInput<S extends z.ZodType>(text: string, schema: S): z.infer<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new DispatchError('invalid_json', 'request body is not valid JSON', [{ field: '(body)', message: 'malformed JSON' }]);
  }
  // NUL, unpaired surrogates and runaway nesting parse fine but PostgreSQL (or JSON.stringify) refuses them.
  const unstorable = findUnstorable(raw);
  if (unstorable) throw new DispatchError('validation_failed', `invalid request body: ${unstorable.field}`, [unstorable]);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw validationError(parsed.error, 'request body');
  return parsed.data;
}
