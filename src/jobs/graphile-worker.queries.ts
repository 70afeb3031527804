import { sql } from 'kysely';
import type { Db } from '../db/database.js';

/*
 * Every statement of Dispatch's TypeScript that reads or writes graphile-worker's private tables,
 * which are not its public API and may change in any release. test/integration/
 * graphile-worker.private.test.ts runs them, and checks what the SQL functions of migrations
 * 0001, 0002 and 0018 rely on, against the pinned version (0.17.x): an upgrade fails there first.
 */

/** The jobs table, schema-qualified (vacuumed by queue maintenance). */
export const GRAPHILE_JOBS_TABLE = 'graphile_worker._private_jobs';

/**
 * What Dispatch's SQL functions use of graphile-worker's private schema: dispatch_schedule_timeouts
 * writes timeout jobs the way graphile_worker.add_jobs does, but without its NOTIFY (migration
 * 0018), dispatch_unschedule_timeout deletes them.
 */
export const PRIVATE_SCHEMA_RELIED_ON = {
  columns: {
    _private_jobs: [
      'key', 'task_id', 'run_at', 'payload', 'priority', 'attempts', 'max_attempts', 'last_error', 'revision',
      'updated_at', 'locked_at', 'locked_by', 'is_available',
    ],
    _private_tasks: ['id', 'identifier'],
  },
  /** Unique, so that ON CONFLICT (key) finds the task's job. */
  uniqueJobColumn: 'key',
} as const;

/**
 * Workers holding job locks that no live replica owns: their lock is older than `deadAfterMs` and
 * no replica that beat within `deadAfterMs` lists them (it died, or never registered). Every
 * replica asks at every heartbeat; its test reads dispatch_locked_jobs_idx (migration 0021), the
 * locked jobs only, where the jobs table holds one timeout job per open attempt.
 */
export async function findOrphanedLockHolders(db: Db, deadAfterMs: number): Promise<string[]> {
  const { rows } = await sql<{ locked_by: string }>`
    SELECT DISTINCT j.locked_by
      FROM graphile_worker._private_jobs j
     WHERE j.locked_by IS NOT NULL
       AND j.locked_at < now() - make_interval(secs => ${deadAfterMs / 1000})
       AND NOT EXISTS (
         SELECT 1 FROM dispatch_replicas r
          WHERE j.locked_by = ANY (r.worker_ids)
            AND r.heartbeat_at >= now() - make_interval(secs => ${deadAfterMs / 1000}))`.execute(db);
  return rows.map((r) => r.locked_by);
}
