import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { findOrphanedLockHolders, GRAPHILE_JOBS_TABLE, PRIVATE_JOB_COLUMNS_RELIED_ON } from '../../src/jobs/graphile-worker.queries.js';
import { heartbeat } from '../../src/jobs/replicas.queries.js';
import { useTestDatabase } from '../helpers/database.js';

/*
 * graphile-worker's private tables are not its API. This file pins what Dispatch uses of them
 * (src/jobs/graphile-worker.queries.ts): after an upgrade, whatever broke fails here, by name,
 * before anything subtler does.
 */

const database = useTestDatabase();
const db = () => database().handle.db;

describe("graphile-worker's private schema, as Dispatch uses it", () => {
  it('is the pinned version, 0.17.x: after an upgrade, check every test of this file, then move the pin', () => {
    const installed = JSON.parse(readFileSync(new URL('../../node_modules/graphile-worker/package.json', import.meta.url), 'utf8')) as { version: string };
    expect(installed.version).toMatch(/^0\.17\./);
  });

  it('has every column our SQL reads', async () => {
    const { rows } = await sql<{ column_name: string }>`
      SELECT column_name FROM information_schema.columns WHERE table_schema = 'graphile_worker' AND table_name = '_private_jobs'`.execute(db());
    const present = rows.map((r) => r.column_name);
    expect(PRIVATE_JOB_COLUMNS_RELIED_ON.filter((c) => !present.includes(c))).toEqual([]);
    expect((await sql<{ found: string | null }>`SELECT to_regclass(${GRAPHILE_JOBS_TABLE})::text AS found`.execute(db())).rows[0]?.found).not.toBeNull();
  });

  it('finds the job locks of workers no live replica owns', async () => {
    await sql`SELECT graphile_worker.add_job('private-schema:probe', job_key := 'private-schema-probe')`.execute(db());
    // What a worker that died holding the job leaves behind.
    await sql`UPDATE graphile_worker._private_jobs SET locked_by = 'ghost-worker', locked_at = now() - interval '1 hour'
               WHERE key = 'private-schema-probe'`.execute(db());
    expect(await findOrphanedLockHolders(db(), 60_000)).toEqual(['ghost-worker']);
    await heartbeat(db(), 'replica-owning-the-ghost', ['ghost-worker'], 30_000);
    expect(await findOrphanedLockHolders(db(), 60_000)).toEqual([]);
  });

  it('finds them reading the locked jobs only, among thousands of jobs waiting for a later time', async () => {
    await sql`SELECT graphile_worker.add_jobs(array_agg(ROW('private-schema:later', '{}'::json, NULL, now() + interval '1 hour', 1,
                                                          'later-' || n, 0, NULL)::graphile_worker.job_spec))
                FROM generate_series(1, 5000) AS n`.execute(db());
    await sql`UPDATE graphile_worker._private_jobs SET locked_by = 'dead-worker', locked_at = now() - interval '1 hour'
               WHERE id = (SELECT min(id) FROM graphile_worker._private_jobs WHERE locked_by IS NULL)`.execute(db());
    await sql`ANALYZE graphile_worker._private_jobs`.execute(db());
    await db().transaction().execute(async (tx) => {
      // The backend's counters of earlier statements may not be flushed yet: count the difference.
      const jobsRead = async () =>
        (
          await sql<{ n: number }>`
            SELECT (coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0))::int AS n
              FROM pg_stat_xact_user_tables WHERE relid = ${GRAPHILE_JOBS_TABLE}::regclass`.execute(tx)
        ).rows[0]!.n;
      const before = await jobsRead();
      expect(await findOrphanedLockHolders(tx, 60_000)).toEqual(['dead-worker']);
      expect((await jobsRead()) - before, 'jobs read to find one lock among 5,000 jobs').toBeLessThanOrEqual(10);
    });
  });
});
