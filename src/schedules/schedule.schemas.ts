import { z } from 'zod';
import type { ScheduleRow } from '../db/database.js';
import { checkTiming, createTaskFields } from '../tasks/task.schemas.js';
import { DispatchError } from '../domain/errors.js';
import { checkCron, isTimeZone } from './cron.js';

/**
 * The task each occurrence creates: the fields of POST /api/v1/tasks, less those that make no
 * sense again and again (dependencies; instants such as run_at and start_by, which every
 * occurrence would share: delay_ms and schedule_to_start_timeout_ms count from each occurrence).
 */
export const taskTemplateSchema = createTaskFields
  .omit({ requester: true, depends_on: true, on_dependency_failure: true, run_at: true, start_by: true })
  .superRefine(checkTiming)
  .describe('The task each occurrence creates, as for POST /api/v1/tasks (its requester is the schedule owner).');
export type TaskTemplate = z.infer<typeof taskTemplateSchema>;

const cronSchema = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .superRefine((value, ctx) => {
    const problem = checkCron(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe('Cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; read by croner.');

const timeZoneSchema = z
  .string()
  .min(1)
  .max(100)
  .refine(isTimeZone, 'not an IANA time zone (e.g. "Europe/Paris", "UTC")')
  .describe('IANA time zone the expression is read in, daylight saving time included.');

const catchUpSchema = z
  .enum(['skip', 'one'])
  .describe('Occurrences missed by more than schedules.late_after_ms (every replica down): skip them, or create one task for them all.');

export const createScheduleSchema = z
  .object({
    cron: cronSchema,
    time_zone: timeZoneSchema.default('UTC'),
    catch_up: catchUpSchema.default('skip'),
    paused: z.boolean().default(false).describe('Created paused: nothing runs until it is resumed (PATCH paused: false).'),
    template: taskTemplateSchema,
  })
  .strict();
export type CreateScheduleInput = z.infer<typeof createScheduleSchema>;

export const patchScheduleSchema = z
  .object({
    cron: cronSchema.optional(),
    time_zone: timeZoneSchema.optional(),
    catch_up: catchUpSchema.optional(),
    paused: z.boolean().optional().describe('true pauses, false resumes from the next occurrence after now.'),
    template: taskTemplateSchema.optional(),
  })
  .strict()
  .refine((body) => Object.keys(body).length > 0, { message: 'give at least one of cron, time_zone, catch_up, paused, template', path: ['cron'] });
export type PatchScheduleInput = z.infer<typeof patchScheduleSchema>;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A schedule id from a URL path, lower-cased as PostgreSQL prints UUIDs. */
export function parseScheduleId(raw: string): string {
  if (!uuid.test(raw)) {
    throw new DispatchError('validation_failed', `invalid schedule id "${raw.slice(0, 64)}"`, [{ field: 'id', message: 'must be a UUID' }]);
  }
  return raw.toLowerCase();
}

const iso = (value: Date | null) => (value ? value.toISOString() : null);
const when = z.iso.datetime().nullable();

/** A schedule as the API shows it (`Schedule` in openapi.json). */
export const scheduleJsonSchema = z
  .object({
    id: z.uuid(),
    owner: z.string().describe('the requester that created it: the requester of every task it creates'),
    cron: z.string(),
    time_zone: z.string(),
    catch_up: z.enum(['skip', 'one']),
    paused: z.boolean(),
    template: z.unknown().describe('the task each occurrence creates, as given at creation (with the defaults of POST /api/v1/tasks applied)'),
    next_run_at: when.describe('the next occurrence; null while paused'),
    last_run_at: when,
    last_task_id: z.uuid().nullable().describe('the task the last occurrence created'),
    last_error: z.string().nullable().describe('why the last occurrence created no task, if it did not'),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'Schedule' });
export type ScheduleJson = z.infer<typeof scheduleJsonSchema>;

export function scheduleToJson(schedule: ScheduleRow): ScheduleJson {
  return {
    id: schedule.id,
    owner: schedule.owner,
    cron: schedule.cron,
    time_zone: schedule.time_zone,
    // CHECK-constrained to these values (the schedules migration).
    catch_up: schedule.catch_up as ScheduleJson['catch_up'],
    paused: schedule.paused,
    template: schedule.template,
    next_run_at: iso(schedule.next_run_at),
    last_run_at: iso(schedule.last_run_at),
    last_task_id: schedule.last_task_id,
    last_error: schedule.last_error,
    created_at: schedule.created_at.toISOString(),
    updated_at: schedule.updated_at.toISOString(),
  };
}
