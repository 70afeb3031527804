import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { startJobRunner, type JobRunner } from '../../src/jobs/runner.js';
import { createLogger } from '../../src/observability/logger.js';
import { useTestDatabase } from '../helpers/database.js';
import { waitFor } from '../helpers/wait.js';

/** The job runner says when its graphile-worker pool has stopped by itself. */
const database = useTestDatabase();

function start(handle: DatabaseHandle, reasons: string[]): Promise<JobRunner> {
  return startJobRunner({
    pool: handle.pool,
    handlers: {},
    concurrency: 1,
    pollIntervalMs: 100,
    logger: createLogger({ level: 'silent' }),
    lostAfterMs: 60_000,
    onLost: (reason) => reasons.push(reason),
  });
}

describe('job runner', () => {
  it('reports the pool lost when graphile-worker shuts it down by itself', async () => {
    const handle = openDatabase(database().url, 4, 'dispatch-worker');
    const reasons: string[] = [];
    const exitCode = process.exitCode;
    try {
      const runner = await start(handle, reasons);
      await waitFor(async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
                                                   WHERE datname = current_database() AND query LIKE 'LISTEN%'`.execute(database().handle.db);
        return rows[0]!.n > 0;
      }, { what: 'the pool listening' });
      // What a newer graphile-worker says after a breaking migration of its schema: 0.17 shuts its
      // pool down gracefully, and its runner's promise resolves, without an error.
      await sql`SELECT pg_notify('worker:migrate', '{"migrationNumber": 999, "breaking": true}')`.execute(database().handle.db);
      await waitFor(() => reasons.length > 0, { what: 'the pool reported lost' });
      expect(reasons).toEqual(['the job runner stopped by itself']);
      expect(runner.alive()).toBe(false);
      await runner.stop().catch(() => undefined);
    } finally {
      // graphile-worker asks the process to exit 57 on that notice; this test process must not.
      process.exitCode = exitCode;
      await handle.close();
    }
  });

  it('does not report a pool it was asked to stop', async () => {
    const handle = openDatabase(database().url, 4, 'dispatch-worker');
    const reasons: string[] = [];
    try {
      const runner = await start(handle, reasons);
      await runner.stop();
      // The promise has settled by the time stop() returns; its handlers run on the next ticks.
      await new Promise((resolve) => setImmediate(resolve));
      expect(reasons).toEqual([]);
      expect(runner.alive()).toBe(true);
    } finally {
      await handle.close();
    }
  });
});
