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

/**
 * Waits until no assignment:run job is queued or running: every task written before this call
 * has been looked at by an assignment pass since (a write either queues the job or is seen by the
 * pass running, whose job stays locked until it ends).
 */
export async function waitForAssignerIdle(db: Db, options: { timeoutMs?: number } = {}): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await sql<{ idle: boolean }>`
        SELECT NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
                            WHERE t.identifier = 'assignment:run') AS idle`.execute(db);
      return rows[0]!.idle;
    },
    { what: 'assigner idle', timeoutMs: options.timeoutMs ?? 10_000 },
  );
}
