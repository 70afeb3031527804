import { type Kysely, sql } from 'kysely';

/**
 * An index of the jobs some worker holds, on graphile-worker's jobs table. Every replica, at every
 * heartbeat, looks for job locks no live replica owns (findOrphanedLockHolders,
 * src/jobs/graphile-worker.queries.ts), and without it that look read the whole table: one timeout
 * job per open attempt, so 31-48 ms a look with 100,000 of them (auto_explain during the drain
 * benchmark), every 5 s, times the replicas. Only running jobs are in it (a handful per worker);
 * timeout jobs enter it only when they fire.
 *
 * The table is graphile-worker's, not ours: test/integration/graphile-worker.private.test.ts
 * checks that the look still reads only the locked jobs. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE INDEX IF NOT EXISTS dispatch_locked_jobs_idx ON graphile_worker._private_jobs (locked_at) WHERE locked_by IS NOT NULL;
COMMENT ON INDEX graphile_worker.dispatch_locked_jobs_idx IS 'Dispatch''s (migration 0021): the jobs some worker holds, for the replicas'' search for locks of dead workers (findOrphanedLockHolders), which otherwise reads every job.';
`,
    )
    .execute(db);
}
