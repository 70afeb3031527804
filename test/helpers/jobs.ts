import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import type { TestDispatch } from './dispatch.js';
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

/**
 * Runs an assignment pass on every replica given and waits for it: every task written before this
 * call has been looked at since. A replica that finds another draining leaves; the draining one
 * takes the request as one more pass (Assigner.drain), and its pass() resolves after that pass.
 */
export async function settleAssignment(replicas: readonly TestDispatch[]): Promise<void> {
  await Promise.all(replicas.map((r) => r.dispatch.assignment.pass()));
}
