import { z } from 'zod';
import { TASK_STATUSES } from '../db/columns.js';
import { agentIdSchema } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';

const MAX_INT4 = 2_147_483_647;
const positiveInt4 = z.number().int().positive().max(MAX_INT4);
export const uuidSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a UUID');

/** A task id from a URL path, lower-cased as PostgreSQL prints UUIDs. */
export function parseTaskId(raw: string): string {
  if (!uuidSchema.safeParse(raw).success) {
    throw new DispatchError('validation_failed', `invalid task id "${raw.slice(0, 64)}"`, [{ field: 'id', message: 'must be a UUID' }]);
  }
  return raw.toLowerCase();
}

const scopeSchema = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .transform((s) => s.toLowerCase());

/** Any JSON value; depth and size are already bounded by the body limit. */
const jsonValue = z.unknown().refine((v) => v !== undefined, 'required');

/** A task request, from REST or from `swarm.task.request`; unknown fields are refused. */
export const createTaskSchema = z
  .object({
    requester: agentIdSchema.optional(),
    title: z.string().trim().min(1).max(500),
    description: z.string().max(20_000).nullable().optional(),
    scope: scopeSchema,
    priority: z.number().int().min(1).max(5).default(3),
    context: jsonValue.nullable().optional(),
    timeout_ms: positiveInt4.optional(),
    heartbeat_timeout_ms: positiveInt4.nullable().optional(),
    start_timeout_ms: positiveInt4.nullable().optional(),
    max_retries: z.number().int().min(0).max(100).default(1),
    parent_id: uuidSchema.nullable().optional(),
  })
  .strict();
export type CreateTaskInput = z.infer<typeof createTaskSchema>;

/** PATCH: cancel, and/or replace the context. */
export const patchTaskSchema = z
  .object({
    status: z.literal('cancelled').optional(),
    context: jsonValue.nullable().optional(),
  })
  .strict()
  .refine((body) => body.status !== undefined || body.context !== undefined, {
    message: 'give status "cancelled" or a new context',
    path: ['status'],
  });

/** The lease: an attempt number returned with the assignment. Optional for v1 clients. */
const attemptSchema = z.number().int().positive().max(MAX_INT4).optional();

export const completeTaskSchema = z.object({ result: jsonValue.nullable().optional(), attempt: attemptSchema }).strict();

export const failTaskSchema = z
  .object({
    error: z.string().min(1).max(20_000),
    retryable: z.boolean().default(true),
    attempt: attemptSchema,
  })
  .strict();

/** Progress is "any JSON payload" in v1; only `attempt` at the top level is read by Dispatch. */
export const progressSchema = z.record(z.string(), z.unknown()).refine(
  (body) => body.attempt === undefined || (Number.isInteger(body.attempt) && (body.attempt as number) > 0 && (body.attempt as number) <= MAX_INT4),
  { message: `must be a positive integer (at most ${MAX_INT4})`, path: ['attempt'] },
);

const queryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const listTasksQuerySchema = z
  .object({
    status: z.enum(TASK_STATUSES).optional(),
    requester: agentIdSchema.optional(),
    assignee: agentIdSchema.optional(),
    scope: scopeSchema.optional(),
    parent_id: uuidSchema.optional(),
    limit: queryInt(1, 500).default(50),
    cursor: z.string().max(200).optional(),
  })
  .strict();
export type ListTasksQuery = z.infer<typeof listTasksQuerySchema>;
