import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { findOrphanedLockHolders, GRAPHILE_JOBS_TABLE, PRIVATE_SCHEMA_RELIED_ON } from '../../src/jobs/graphile-worker.queries.js';
import { heartbeat } from '../../src/jobs/replicas.queries.js';
import { useTestDatabase } from '../helpers/database.js';

/*
 * graphile-worker's private tables are not its API. This file pins what Dispatch uses of them
 * (src/jobs/graphile-worker.queries.ts and the SQL functions of migrations 0001, 0002 and 0018): after
 * an upgrade, whatever broke fails here, by name, before anything subtler does.
 */

const database = useTestDatabase();
const db = () => database().handle.db;

const jobsByKey = async (key: string) =>
  (
    await sql<{ identifier: string; payload: unknown; run_at: Date }>`
      SELECT t.identifier, j.payload, j.run_at FROM graphile_worker._private_jobs j
        JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE j.key = ${key}`.execute(db())
  ).rows;

describe("graphile-worker's private schema, as Dispatch uses it", () => {
  it('is the pinned version, 0.17.x: after an upgrade, check every test of this file, then move the pin', () => {
    const installed = JSON.parse(readFileSync(new URL('../../node_modules/graphile-worker/package.json', import.meta.url), 'utf8')) as { version: string };
    expect(installed.version).toMatch(/^0\.17\./);
  });

  it('has every column our SQL reads or writes', async () => {
    const { rows } = await sql<{ table_name: string; column_name: string }>`
      SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'graphile_worker'`.execute(db());
    for (const [table, columns] of Object.entries(PRIVATE_SCHEMA_RELIED_ON.columns)) {
      const present = rows.filter((r) => r.table_name === table).map((r) => r.column_name);
      expect({ table, missing: columns.filter((c) => !present.includes(c)) }).toEqual({ table, missing: [] });
    }
    expect((await sql<{ found: string | null }>`SELECT to_regclass(${GRAPHILE_JOBS_TABLE})::text AS found`.execute(db())).rows[0]?.found).not.toBeNull();
  });

  it('keeps a unique key on jobs, which dispatch_schedule_timeouts upserts on', async () => {
    const { rows } = await sql<{ columns: string[] }>`
      SELECT array_agg(a.attname ORDER BY a.attnum)::text[] AS columns FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
       WHERE i.indrelid = ${GRAPHILE_JOBS_TABLE}::regclass AND i.indisunique AND i.indpred IS NULL
       GROUP BY i.indexrelid`.execute(db());
    expect(rows.map((r) => r.columns)).toContainEqual([PRIVATE_SCHEMA_RELIED_ON.uniqueJobColumn]);
  });

  it('lets the timeout functions add, move and remove a timeout job', async () => {
    const taskId = '00000000-0000-4000-8000-00000000abcd';
    const first = new Date(Date.now() + 60_000);
    const later = new Date(Date.now() + 120_000);
    await sql`SELECT dispatch_schedule_timeouts(ARRAY[${taskId}]::uuid[], ARRAY[1], ARRAY[${first}]::timestamptz[])`.execute(db());
    expect(await jobsByKey(`timeout:${taskId}`)).toMatchObject([{ identifier: 'timeouts:check', payload: { task_id: taskId, attempt: 1 } }]);
    await sql`SELECT dispatch_schedule_timeouts(ARRAY[${taskId}]::uuid[], ARRAY[2], ARRAY[${later}]::timestamptz[])`.execute(db());
    const moved = await jobsByKey(`timeout:${taskId}`);
    expect(moved).toMatchObject([{ payload: { task_id: taskId, attempt: 2 } }]);
    expect(moved[0]!.run_at.getTime()).toBe(later.getTime());
    await sql`SELECT dispatch_unschedule_timeout(${taskId}::uuid)`.execute(db());
    expect(await jobsByKey(`timeout:${taskId}`)).toEqual([]);
  });

  it('gives a new deadline its own job while the old attempt\'s job runs, as add_jobs does', async () => {
    const taskId = '00000000-0000-4000-8000-00000000abce';
    await sql`SELECT dispatch_schedule_timeouts(ARRAY[${taskId}]::uuid[], ARRAY[1], ARRAY[now()]::timestamptz[])`.execute(db());
    // A worker has taken attempt 1's job and is running it.
    await sql`UPDATE graphile_worker._private_jobs SET locked_by = 'busy-worker', locked_at = now() WHERE key = ${`timeout:${taskId}`}`.execute(db());
    const next = new Date(Date.now() + 60_000);
    await sql`SELECT dispatch_schedule_timeouts(ARRAY[${taskId}]::uuid[], ARRAY[2], ARRAY[${next}]::timestamptz[])`.execute(db());
    expect(await jobsByKey(`timeout:${taskId}`)).toMatchObject([{ identifier: 'timeouts:check', payload: { task_id: taskId, attempt: 2 } }]);
    const { rows } = await sql<{ key: string | null }>`SELECT key FROM graphile_worker._private_jobs WHERE locked_by = 'busy-worker'`.execute(db());
    expect(rows).toEqual([{ key: null }]);
  });

  it('writes timeout jobs without waking workers (no NOTIFY "jobs:insert"), while add_job still does', async () => {
    const listener = new pg.Client({ connectionString: database().url });
    await listener.connect();
    try {
      const heard: string[] = [];
      listener.on('notification', (n) => heard.push(n.payload ?? ''));
      await listener.query('LISTEN "jobs:insert"');
      const ids = Array.from({ length: 20 }, (_, i) => `00000000-0000-4000-8000-0000000100${String(i).padStart(2, '0')}`);
      await sql`SELECT dispatch_schedule_timeouts(${ids}::uuid[], ${ids.map(() => 1)}::integer[],
                  ${ids.map(() => new Date(Date.now() + 60_000))}::timestamptz[])`.execute(db());
      // Notifications arrive in commit order: once this job's arrives, any from the timeouts would have.
      await sql`SELECT graphile_worker.add_job('private-schema:marker', job_key := 'private-schema-marker')`.execute(db());
      await expect.poll(() => heard.length, { timeout: 5_000 }).toBeGreaterThan(0);
      expect(heard.map((p) => (JSON.parse(p) as { count: number }).count)).toEqual([1]);
    } finally {
      await listener.end();
    }
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

  it('finds them reading the locked jobs only, among thousands of timeout jobs', async () => {
    // Timeout jobs as the assigner writes them (one per open attempt), then a dead worker's lock.
    await sql`INSERT INTO dispatch_tasks (id, requester, title, scope)
              SELECT dispatch_uuid_v7(), 'probe', 'probe ' || n, 'probe' FROM generate_series(1, 5000) AS n`.execute(db());
    await sql`SELECT dispatch_schedule_timeouts(array_agg(id), array_agg(1), array_agg(now() + interval '1 hour')) FROM dispatch_tasks`.execute(db());
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
