import { z } from 'zod';

const MAX_INT4 = 2_147_483_647;
const limit = z.number().int().positive().max(MAX_INT4).nullable().optional();

/** PATCH body: any of the three controls; fields left out keep their value, null removes a limit. */
export const scopeChangeSchema = z
  .object({
    paused: z.boolean().optional().describe('true: no task of the scope is assigned until false'),
    max_running: limit.describe('at most this many tasks of the scope assigned or running at once; null removes the limit'),
    max_starts_per_minute: limit.describe('at most this many assignments in any 60 s; null removes the limit'),
  })
  .strict()
  .refine((b) => b.paused !== undefined || b.max_running !== undefined || b.max_starts_per_minute !== undefined, {
    message: 'give paused, max_running or max_starts_per_minute',
    path: ['paused'],
  });

const count = z.number().int();

/** A scope as GET /api/v1/scopes shows it (`Scope` in openapi.json). */
export const scopeViewJsonSchema = z
  .object({
    scope: z.string(),
    depth: z.object({ pending: count, assigned: count, running: count }),
    oldest_pending_seconds: z.number().describe('seconds the oldest pending task has waited; 0 when none waits'),
    paused: z.boolean(),
    max_running: count.nullable(),
    max_starts_per_minute: count.nullable(),
    starts_last_minute: count.nullable().describe('assignments in the last 60 s, counted only while max_starts_per_minute is set (else null)'),
    held_because: z.string().nullable().describe('why no task of it is assigned now ("scope paused", "scope at its limit: ..."), or null'),
    changed_at: z.iso.datetime().nullable(),
    changed_by: z.string().nullable(),
  })
  .meta({ id: 'Scope' });
export type ScopeView = z.infer<typeof scopeViewJsonSchema>;
