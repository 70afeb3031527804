import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import { waitFor } from './wait.js';

/** Whether graphile-worker holds a job under `key` (queued, scheduled or running). */
export async function jobQueued(db: Db, key: string): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE key = ${key}`.execute(db);
  return rows[0]!.n > 0;
}

/**
 * Waits until the job under `key` has run to success (graphile-worker deletes it then). The job
 * must have been seen queued first, or this would pass before it was ever added.
 */
export async function waitForJobRun(db: Db, key: string, options: { timeoutMs?: number } = {}): Promise<void> {
  await waitFor(async () => !(await jobQueued(db, key)), { what: `job ${key} to run`, timeoutMs: options.timeoutMs ?? 10_000 });
}
