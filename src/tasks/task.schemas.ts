import { z } from 'zod';
import { TASK_STATUSES } from '../db/columns.js';
import { agentIdSchema } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';

const MAX_INT4 = 2_147_483_647;
export const MAX_DEPENDENCIES = 100;
const positiveInt4 = z.number().int().positive().max(MAX_INT4);
// Case-insensitive by character class rather than a regex flag, so openapi.json's pattern (no flags in JSON Schema) says the same.
export const uuidSchema = z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, 'must be a UUID');

/** A task id from a URL path, lower-cased as PostgreSQL prints UUIDs. */
export function parseTaskId(raw: string): string {
  if (!uuidSchema.safeParse(raw).success) {
    throw new DispatchError('validation_failed', `invalid task id "${raw.slice(0, 64)}"`, [{ field: 'id', message: 'must be a UUID' }]);
  }
  return raw.toLowerCase();
}

export const scopeSchema = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .transform((s) => s.toLowerCase());

/** Any JSON value; depth and size are already bounded by the body limit. */
const jsonValue = z.unknown().refine((v) => v !== undefined, 'required');

/** How far ahead a task may be delayed or given to start: a year. */
export const MAX_SCHEDULE_AHEAD_MS = 365 * 24 * 3_600_000;
const isoInstant = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time with a time zone (Z or ±hh:mm)' });
const scheduleMs = z.number().int().max(MAX_SCHEDULE_AHEAD_MS, `at most ${MAX_SCHEDULE_AHEAD_MS} (a year)`);

/**
 * Delayed tasks and expiry (migration 0012): one way to give each time, within a year, and an
 * expiry after the task becomes ready. Judged on this replica's clock; the database computes the
 * stored instants from its own.
 */
export function checkTiming(body: { run_at?: string | undefined; delay_ms?: number | undefined; start_by?: string | undefined; schedule_to_start_timeout_ms?: number | undefined }, ctx: z.RefinementCtx) {
  const now = Date.now();
  if (body.run_at !== undefined && body.delay_ms !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['run_at'], message: 'give run_at or delay_ms, not both' });
  }
  if (body.start_by !== undefined && body.schedule_to_start_timeout_ms !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['start_by'], message: 'give start_by or schedule_to_start_timeout_ms, not both' });
  }
  const runAt = body.run_at !== undefined ? Date.parse(body.run_at) : body.delay_ms !== undefined ? now + body.delay_ms : undefined;
  if (body.run_at !== undefined && runAt! > now + MAX_SCHEDULE_AHEAD_MS) {
    ctx.addIssue({ code: 'custom', path: ['run_at'], message: 'at most a year from now' });
  }
  if (body.start_by !== undefined) {
    const startBy = Date.parse(body.start_by);
    if (startBy <= now) ctx.addIssue({ code: 'custom', path: ['start_by'], message: 'must be in the future' });
    else if (startBy > now + 2 * MAX_SCHEDULE_AHEAD_MS) ctx.addIssue({ code: 'custom', path: ['start_by'], message: 'at most two years from now' });
    else if (runAt !== undefined && startBy <= runAt) {
      ctx.addIssue({ code: 'custom', path: ['start_by'], message: 'must be after the time the task becomes ready (run_at or delay_ms)' });
    }
  }
}

/** The fields of a task request, before the checks across fields (createTaskSchema adds them). */
export const createTaskFields = z
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
    depends_on: z
      .array(uuidSchema.transform((id) => id.toLowerCase()))
      .max(MAX_DEPENDENCIES)
      .refine((ids) => new Set(ids).size === ids.length, 'lists a task twice')
      .optional()
      .describe(
        `Tasks (up to ${MAX_DEPENDENCIES}, existing, readable by the requester) that must complete before this one: until then it is \`waiting\`, then pending and assigned at once.`,
      ),
    on_dependency_failure: z
      .enum(['cancel', 'run'])
      .default('cancel')
      .describe('When a dependency fails, is cancelled or times out: cancel this task (default; the reason names the dependency), or run it anyway once every dependency has ended.'),
    run_at: isoInstant
      .optional()
      .describe('Delayed task: not assigned before this instant (ISO 8601 with a time zone; a time already past means now). At most a year ahead. Not with delay_ms.'),
    delay_ms: scheduleMs
      .min(0)
      .optional()
      .describe('Delayed task: not assigned before this many milliseconds after creation (at most a year). Not with run_at.'),
    start_by: isoInstant
      .optional()
      .describe('Expiry: if the task is still pending (not assigned to an agent) at this instant, it ends with status timeout and timeout_reason "expired". Must be in the future and after run_at. Not with schedule_to_start_timeout_ms.'),
    schedule_to_start_timeout_ms: scheduleMs
      .positive()
      .optional()
      .describe('Expiry, relative: start_by = the time the task becomes ready (run_at, else creation) + this many milliseconds. Not with start_by.'),
  })
  .strict();

/** A task request, from REST or from `swarm.task.request`; unknown fields are refused. */
export const createTaskSchema = createTaskFields.superRefine(checkTiming);
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

/** A whole-number query parameter between min and max. */
export const queryInt = (min: number, max: number) =>
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

const isoTime = z.iso.datetime({ offset: true });
const statusList = z.union([z.enum(TASK_STATUSES), z.array(z.enum(TASK_STATUSES)).min(1).max(TASK_STATUSES.length)]);

/**
 * POST /api/v1/tasks/cancel and /requeue: which tasks, and at most how many. At least one filter
 * field is required, so an empty filter cannot act on every task by accident.
 */
export const bulkActionSchema = z
  .object({
    filter: z
      .object({
        ids: z.array(uuidSchema).min(1).max(10_000).optional().describe('Only these tasks.'),
        scope: scopeSchema.optional(),
        status: statusList.optional().describe('One status or a list; cancel acts only on unfinished tasks, requeue only on failed and timed-out ones.'),
        requester: agentIdSchema.optional(),
        assignee: agentIdSchema.optional(),
        created_before: isoTime.optional().describe('ISO 8601; tasks created strictly before.'),
        created_after: isoTime.optional().describe('ISO 8601; tasks created at or after.'),
      })
      .strict()
      .refine((f) => Object.values(f).some((v) => v !== undefined), { message: 'give at least one filter field' }),
    limit: z.number().int().min(1).max(1_000_000).describe('Required: the most tasks this call may change.'),
  })
  .strict();
export type BulkActionInput = z.infer<typeof bulkActionSchema>;
