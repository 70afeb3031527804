import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openReplicaConnections, type ReplicaConnections } from '../../src/db/connections.js';
import type pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { createTestDatabase, databaseUrl, type TestDatabase } from '../helpers/database.js';
import { testConfig } from '../helpers/dispatch.js';
import { waitFor } from '../helpers/wait.js';

/**
 * database.idle_timeout_ms: a replica's pools keep their connections through a lull by default
 * (a new connection is a new backend that plans everything again, on the first tasks of the next
 * burst), and close idle ones when asked. Each replica's connections here are seen from outside,
 * in pg_stat_activity, by their backends' pids.
 */
let database: TestDatabase;
let observer: DatabaseHandle;

beforeAll(async () => {
  database = await createTestDatabase();
  observer = openDatabase(databaseUrl(database.name), 1, 'pool-idle-observer');
});
afterAll(async () => {
  await observer?.close();
  await database?.drop();
});

/**
 * The backend of one connection of each of the replica's pools (API, direct, jobs), asked through
 * the pg pool itself, as graphile-worker uses the jobs pool.
 */
async function backendsOf(connections: ReplicaConnections): Promise<number[]> {
  const pid = async (pool: pg.Pool) => (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return [await pid(connections.api.pool), await pid(connections.direct.pool), await pid(connections.jobs.pool)];
}

async function stillConnected(pids: number[]): Promise<number[]> {
  const { rows } = await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE pid = ANY(${pids}::int[])`.execute(observer.db);
  return rows.map((r) => r.pid).sort((a, b) => a - b);
}

describe('pooled connections through a lull', () => {
  it('are kept by default, closed after database.idle_timeout_ms when it is set, and ended with their pools', async () => {
    const url = databaseUrl(database.name);
    const kept = openReplicaConnections(testConfig(), url);
    const quick = openReplicaConnections(testConfig({ database: { idle_timeout_ms: 200 } }), url);
    // node-postgres' own default, which the pools used before the setting existed.
    const tenSeconds = openReplicaConnections(testConfig({ database: { idle_timeout_ms: 10_000 } }), url);
    try {
      const [keptPids, quickPids, tenSecondsPids] = [await backendsOf(kept), await backendsOf(quick), await backendsOf(tenSeconds)];
      await waitFor(async () => (await stillConnected(quickPids)).length === 0, { timeoutMs: 3_000, what: 'connections idle for 200 ms closed' });
      expect(await stillConnected(tenSecondsPids)).toEqual([...tenSecondsPids].sort((a, b) => a - b));
      await waitFor(async () => (await stillConnected(tenSecondsPids)).length === 0, { timeoutMs: 20_000, intervalMs: 100, what: 'connections idle for 10 s closed' });
      expect(await stillConnected(keptPids)).toEqual([...keptPids].sort((a, b) => a - b));
      // Kept is not leaked: closing the replica's connections ends every pool's, the jobs pool's
      // too (graphile-worker's, which runs no query through Kysely).
      await kept.close();
      await waitFor(async () => (await stillConnected(keptPids)).length === 0, { timeoutMs: 3_000, what: 'the kept connections closed with their pools' });
    } finally {
      await Promise.all([quick.close(), tenSeconds.close()]);
      if (!kept.api.pool.ending) await kept.close();
    }
  }, 30_000);
});
