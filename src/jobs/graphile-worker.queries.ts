import { sql } from 'kysely';
import type { Db } from '../db/database.js';

/*
 * Every statement of Dispatch's TypeScript that reads or writes graphile-worker's private tables,
 * which are not its public API and may change in any release. test/integration/
 * graphile-worker.private.test.ts runs them against the pinned version (0.17.x): an upgrade fails
 * there first. (Dispatch's SQL functions no longer write those tables: migration 0023.)
 */

/** The jobs table, schema-qualified (vacuumed by queue maintenance). */
export const GRAPHILE_JOBS_TABLE = 'graphile_worker._private_jobs';

/** The columns of graphile-worker's private jobs table that Dispatch's statements read. */
export const PRIVATE_JOB_COLUMNS_RELIED_ON = ['locked_at', 'locked_by'] as const;

/**
 * Workers holding job locks that no live replica owns: their lock is older than `deadAfterMs` and
 * no replica that beat within `deadAfterMs` lists them (it died, or never registered). Every
 * replica asks at every heartbeat; its test reads dispatch_locked_jobs_idx (migration 0021), the
 * locked jobs only, however many jobs wait for a later time.
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
