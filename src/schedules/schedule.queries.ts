import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { ScheduleRow } from '../db/database.js';

/** The columns a create or a PATCH writes. */
export interface ScheduleFields {
  cron: string;
  time_zone: string;
  catch_up: 'skip' | 'one';
  paused: boolean;
  template: unknown;
  next_run_at: Date | null;
}

export async function insertSchedule(db: Db, owner: string, fields: ScheduleFields): Promise<ScheduleRow> {
  return await db
    .insertInto('dispatch_schedules')
    .values({ owner, ...fields, template: JSON.stringify(fields.template) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findSchedule(db: Db, id: string): Promise<ScheduleRow | undefined> {
  return await db.selectFrom('dispatch_schedules').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Newest first; only `owner`'s when given. */
export async function listSchedules(db: Db, owner: string | undefined, limit: number): Promise<ScheduleRow[]> {
  let query = db.selectFrom('dispatch_schedules').selectAll();
  if (owner !== undefined) query = query.where('owner', '=', owner);
  return await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

export async function updateSchedule(db: Db, id: string, fields: ScheduleFields): Promise<ScheduleRow | undefined> {
  return await db
    .updateTable('dispatch_schedules')
    .set({ ...fields, template: JSON.stringify(fields.template) })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteSchedule(db: Db, id: string): Promise<boolean> {
  const result = await db.deleteFrom('dispatch_schedules').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/**
 * Whether any schedule is due, read without a transaction: what every replica asks at each poll
 * (4 a second by default), so that one with nothing to fire sends one statement, not a BEGIN, a
 * locking read and a COMMIT. A schedule falling due just after is found at the next poll.
 */
export async function anyScheduleDue(db: Db): Promise<boolean> {
  const { rows } = await sql<{ due: boolean }>`SELECT EXISTS (SELECT 1 FROM dispatch_schedules WHERE next_run_at <= now()) AS due`.execute(db);
  return rows[0]!.due;
}

/**
 * Due schedules, locked until the transaction ends; those another replica is firing are skipped,
 * not waited for. `now` is the database's clock, the same for every replica.
 */
export async function claimDueSchedules(db: Db, limit: number): Promise<Array<ScheduleRow & { now: Date }>> {
  const { rows } = await sql<ScheduleRow & { now: Date }>`
    SELECT *, now() AS now FROM dispatch_schedules
     WHERE next_run_at <= now()
     ORDER BY next_run_at
     LIMIT ${limit}
       FOR UPDATE SKIP LOCKED`.execute(db);
  return rows;
}

/** After a firing: the next occurrence, and what the last one created. */
export async function advanceSchedule(
  db: Db,
  id: string,
  change: { next_run_at: Date | null; last_run_at: Date | null; last_task_id: string | null; last_error: string | null },
): Promise<void> {
  await sql`
    UPDATE dispatch_schedules
       SET next_run_at = ${change.next_run_at},
           last_run_at = coalesce(${change.last_run_at}::timestamptz, last_run_at),
           last_task_id = coalesce(${change.last_task_id}::uuid, last_task_id),
           last_error = ${change.last_error}
     WHERE id = ${id}`.execute(db);
}
