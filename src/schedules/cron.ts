import { Cron } from 'croner';

/**
 * Cron arithmetic, through croner: it reads 5- and 6-field expressions, computes occurrences in
 * any IANA time zone across daylight-saving changes, has no dependencies and is maintained.
 * Pure: no clock of its own, so tests give the instants.
 */

const pattern = (cron: string, timeZone = 'UTC') => new Cron(cron, { timezone: timeZone, paused: true });

/** Why an expression cannot be used, or null when it can. */
export function checkCron(cron: string): string | null {
  try {
    pattern(cron);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : 'not a cron expression';
  }
}

export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The first occurrence strictly after `after`, or null when the expression has none. */
export function nextOccurrence(cron: string, timeZone: string, after: Date): Date | null {
  return pattern(cron, timeZone).nextRun(after);
}

/** Occurrences from `from` (included) up to `until` (included), at most `limit`. */
export function occurrencesBetween(cron: string, timeZone: string, from: Date, until: Date, limit: number): Date[] {
  const job = pattern(cron, timeZone);
  const found: Date[] = [];
  let cursor: Date | null = new Date(from.getTime() - 1);
  while (found.length < limit && (cursor = job.nextRun(cursor)) && cursor <= until) found.push(cursor);
  return found;
}

export interface DueSchedule {
  cron: string;
  time_zone: string;
  catch_up: string;
  /** The first occurrence not yet handled (due: at or before now). */
  next_run_at: Date;
}

export interface DuePlan {
  /** Occurrences to create a task for, oldest first. */
  create: Date[];
  /** The schedule's next occurrence after these, or null when it has none. */
  next: Date | null;
}

/** At most this many on-time occurrences in one pass (a schedule every second, a runner late by seconds). */
const MAX_PER_PASS = 100;

/**
 * What a due schedule creates now. Occurrences within `lateAfterMs` of now are on time and each
 * gets its task; older ones were missed (no replica ran): `skip` drops them, `one` creates one
 * task for them all, keyed by the first missed occurrence.
 */
export function planDue(schedule: DueSchedule, now: Date, lateAfterMs: number): DuePlan {
  const lateBefore = new Date(now.getTime() - lateAfterMs);
  const missed = schedule.next_run_at < lateBefore;
  const from = missed ? lateBefore : schedule.next_run_at;
  const onTime = occurrencesBetween(schedule.cron, schedule.time_zone, from, now, MAX_PER_PASS);
  const create = missed && schedule.catch_up === 'one' ? [schedule.next_run_at, ...onTime] : onTime;
  const after = onTime.length === MAX_PER_PASS ? onTime.at(-1)! : now;
  return { create, next: nextOccurrence(schedule.cron, schedule.time_zone, after) };
}
