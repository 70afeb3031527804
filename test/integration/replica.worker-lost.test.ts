import { sql } from 'kysely';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.js';
import { spawnReplica, type ReplicaProcess } from '../helpers/replica-process.js';
import { runOnServer } from '../helpers/scratch-database.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A replica whose job worker pool is gone for good must not go on looking healthy: /ready turns
 * 503, then the process exits non-zero. "Gone for good" here: graphile-worker's connections are
 * terminated and the database refuses new ones, while the API's open connections keep working.
 */
const database = useTestDatabase();
let replica: ReplicaProcess | undefined;
afterEach(async () => {
  await runOnServer(inject('serverUrl'), `ALTER DATABASE ${database().name} ALLOW_CONNECTIONS true`);
  await replica?.stop(5_000);
  replica = undefined;
});

async function start(name: string, worker: { pool_lost_after_ms: number; unready_before_exit_ms: number }): Promise<ReplicaProcess> {
  replica = await spawnReplica({ databaseUrl: database().url, name, config: { worker: { poll_interval_ms: 100, ...worker } } });
  return replica;
}

async function readyStatus(r: ReplicaProcess): Promise<number | 'down'> {
  try {
    return (await fetch(`${r.opsUrl}/ready`, { signal: AbortSignal.timeout(2_000) })).status;
  } catch {
    return 'down';
  }
}

describe('a replica whose job worker pool is lost', () => {
  it('answers /ready 503, then exits non-zero', async () => {
    const r = await start('worker-lost', { pool_lost_after_ms: 1_500, unready_before_exit_ms: 3_000 });
    expect(await readyStatus(r)).toBe(200);
    const workerConnections = async () => {
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'dispatch-worker'`.execute(
        database().handle.db,
      );
      return rows[0]!.n;
    };
    await waitFor(async () => (await workerConnections()) > 0, { what: 'the worker pool connected' });

    await runOnServer(inject('serverUrl'), `ALTER DATABASE ${database().name} ALLOW_CONNECTIONS false`);
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE datname = current_database() AND application_name = 'dispatch-worker'`.execute(database().handle.db);

    // 503 while the process is still up, and for the worker's sake: the API's pool still answers.
    await waitFor(async () => !r.hasExited() && (await readyStatus(r)) === 503, { what: '/ready 503', timeoutMs: 15_000 });
    expect(r.hasExited()).toBe(false);
    const exit = await Promise.race([r.exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
    expect(exit).not.toBe('still running');
    expect(exit).toMatchObject({ code: 1 });
    expect(r.output()).toMatch(/job worker pool lost/);
  }, 60_000);

  it('rides out a short loss of its connections (graphile-worker reconnects)', async () => {
    // Production waits 60 s before calling the pool lost; 20 s still proves a cut is ridden out and
    // leaves a loaded CI machine time to reconnect (at 5 s one full run in three gave up here).
    const r = await start('worker-blip', { pool_lost_after_ms: 20_000, unready_before_exit_ms: 0 });
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE datname = current_database() AND application_name = 'dispatch-worker'`.execute(database().handle.db);
    // Proof it ran jobs again after the cut: an assignment:run job added now is taken and done.
    // That one job, by its id: the assignment tick keeps adding jobs of the same name, so "none
    // left" may never be seen on a busy machine.
    const { rows: added } = await sql<{ id: string }>`
      SELECT (graphile_worker.add_job('assignment:run', max_attempts := 3)).id::text AS id`.execute(database().handle.db);
    expect(added[0]!.id).toMatch(/^\d+$/);
    await waitFor(
      async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE id = ${added[0]!.id}::bigint`.execute(database().handle.db);
        return rows[0]!.n === 0;
      },
      { what: 'the job taken after the reconnect', timeoutMs: 30_000 },
    );
    // A fetch succeeded after the cut, which is what clears the pool's failing streak.
    expect(r.hasExited()).toBe(false);
    expect(await readyStatus(r)).toBe(200);
  }, 60_000);
});
