import type { Db, ScheduleRow } from '../db/database.js';
import { coversScope, hasRole, readsEverything, type Caller } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';
import { nextOccurrence } from './cron.js';
import * as q from './schedule.queries.js';
import type { CreateScheduleInput, PatchScheduleInput, TaskTemplate } from './schedule.schemas.js';

function requireScope(caller: Caller, template: TaskTemplate): void {
  if (!coversScope(caller, template.scope)) {
    throw new DispatchError('forbidden', `this credential may create tasks only in the scopes ${caller.scopes.join(', ')}`, [
      { field: 'template.scope', message: `not one of this credential's scopes: ${caller.scopes.join(', ')}` },
    ]);
  }
}

/** The next occurrence after now, or a 400 naming `cron` when there is none (a date in the past). */
function firstOccurrence(cron: string, timeZone: string, now: Date): Date {
  const next = nextOccurrence(cron, timeZone, now);
  if (!next) throw new DispatchError('validation_failed', 'invalid request body: cron', [{ field: 'cron', message: 'has no occurrence in the future' }]);
  return next;
}

/** A schedule owned by the caller; its tasks are requested by the caller. */
export async function createSchedule(db: Db, caller: Caller, input: CreateScheduleInput, now = new Date()): Promise<ScheduleRow> {
  requireScope(caller, input.template);
  const next = firstOccurrence(input.cron, input.time_zone, now);
  return await q.insertSchedule(db, caller.agent, { ...input, next_run_at: input.paused ? null : next });
}

/** Observers and admins see every schedule; anyone else its own, and to them others' do not exist. */
export async function getVisibleSchedule(db: Db, id: string, caller: Caller): Promise<ScheduleRow> {
  const schedule = await q.findSchedule(db, id);
  if (!schedule || (!readsEverything(caller) && schedule.owner !== caller.agent)) throw new DispatchError('not_found', `schedule ${id} not found`);
  return schedule;
}

export async function listSchedules(db: Db, caller: Caller): Promise<ScheduleRow[]> {
  return await q.listSchedules(db, readsEverything(caller) ? undefined : caller.agent, 500);
}

/** Only the owner (as a requester) or an admin changes or deletes a schedule. */
async function requireOwner(db: Db, id: string, caller: Caller, action: string): Promise<ScheduleRow> {
  const schedule = await getVisibleSchedule(db, id, caller);
  if (!caller.admin && (schedule.owner !== caller.agent || !hasRole(caller, 'requester'))) {
    throw new DispatchError('forbidden', `only the owner of schedule ${id} or an admin may ${action} it`);
  }
  return schedule;
}

/**
 * Pause, resume or change a schedule. A paused schedule has no next occurrence; resuming, or a
 * new expression or time zone, starts from the first occurrence after now (what was missed while
 * paused is not caught up).
 */
export async function updateSchedule(db: Db, id: string, caller: Caller, patch: PatchScheduleInput, now = new Date()): Promise<ScheduleRow> {
  const current = await requireOwner(db, id, caller, 'change');
  if (patch.template) requireScope(caller, patch.template);
  const cron = patch.cron ?? current.cron;
  const timeZone = patch.time_zone ?? current.time_zone;
  const paused = patch.paused ?? current.paused;
  const timing = patch.cron !== undefined || patch.time_zone !== undefined || (current.paused && !paused);
  const next = paused ? null : timing ? firstOccurrence(cron, timeZone, now) : current.next_run_at;
  const updated = await q.updateSchedule(db, id, {
    cron,
    time_zone: timeZone,
    catch_up: patch.catch_up ?? (current.catch_up as 'skip' | 'one'),
    paused,
    template: patch.template ?? current.template,
    next_run_at: next,
  });
  if (!updated) throw new DispatchError('not_found', `schedule ${id} not found`);
  return updated;
}

export async function deleteSchedule(db: Db, id: string, caller: Caller): Promise<void> {
  await requireOwner(db, id, caller, 'delete');
  if (!(await q.deleteSchedule(db, id))) throw new DispatchError('not_found', `schedule ${id} not found`);
}
