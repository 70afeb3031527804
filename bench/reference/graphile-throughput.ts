/**
 * Yardstick for the backlog drain: how many no-op jobs a second one graphile-worker process runs
 * from a backlog committed up front, with its batching on (a local queue fetching and locking
 * many jobs per query, completions written in batches), on a database of its own on the
 * benchmark's server. What a queue built on graphile-worker could reach per process if each
 * assignment were one job; Dispatch drains with batched claims instead, so it should come close.
 */
import { makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import { createLogger, workerLogger } from '../../src/observability/logger.js';
import { withBenchDatabase } from '../lib/database.js';
import { checkpointBeforeBacklog } from '../lib/workload.js';

const logger = workerLogger(createLogger({ level: 'warn' }));
const CONCURRENCY = 10;
const LOCAL_QUEUE = 500;

export interface ThroughputResult {
  jobs: number;
  elapsedMs: number;
  perSecond: number;
}

export async function graphileBatchedThroughput(jobs: number): Promise<ThroughputResult> {
  return await withBenchDatabase(
    'gw_throughput',
    async (database) => {
      const utils = await makeWorkerUtils({ connectionString: database.url, logger });
      await utils.migrate();
      // The backlog in one statement, as the drain's is (graphile-worker's own bulk insert),
      // after a checkpoint as the drain's is.
      await checkpointBeforeBacklog(database.handle.db);
      await database.handle.pool.query(
        `SELECT graphile_worker.add_jobs(array_agg(('noop', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec))
           FROM generate_series(1, $1)`,
        [jobs],
      );
      await utils.release();
      const workerPool = new pg.Pool({ connectionString: database.url, max: CONCURRENCY + 2 });
      workerPool.on('error', () => {});
      workerPool.on('connect', (client) => client.on('error', () => {}));
      let done = 0;
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const started = performance.now();
      const runner = await run({
        pgPool: workerPool,
        concurrency: CONCURRENCY,
        noHandleSignals: true,
        logger,
        preset: { worker: { localQueue: { size: LOCAL_QUEUE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
        taskList: {
          noop: async () => {
            if (++done === jobs) finish();
          },
        },
      });
      try {
        await finished;
        const elapsedMs = performance.now() - started;
        return { jobs, elapsedMs, perSecond: (jobs * 1_000) / elapsedMs };
      } finally {
        await runner.stop();
        await workerPool.end();
      }
    },
    false,
  );
}
