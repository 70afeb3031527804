/**
 * Yardstick for idle create -> assigned: graphile-worker's own hop, from the `addJob` call to the
 * task function starting, one job at a time with gaps (the same pacing as Dispatch's idle
 * latency run), on a database of its own on the benchmark's server. Dispatch's assignment is a
 * graphile-worker job woken by the insert trigger, so this is the floor its idle latency stands on.
 *
 * The runner gets Dispatch's worker settings (concurrency 2, poll interval 500 ms, its own pool)
 * and runs in the benchmark process, which is otherwise idle while it is measured.
 */
import { makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import { createLogger, workerLogger } from '../../src/observability/logger.js';
import { withBenchDatabase } from '../lib/database.js';

const logger = workerLogger(createLogger({ level: 'warn' }));

/** Each job's latency (ms) in the order they ran, after `warmup` jobs not measured. */
export async function graphileAddJobLatency(samples: number, gapMs: number, warmup = 50): Promise<number[]> {
  return await withBenchDatabase(
    'gw_latency',
    async (database) => {
      const workerPool = new pg.Pool({ connectionString: database.url, max: 4 });
      workerPool.on('error', () => {});
      workerPool.on('connect', (client) => client.on('error', () => {}));
      const utils = await makeWorkerUtils({ connectionString: database.url, logger });
      await utils.migrate();
      let started: ((at: number) => void) | undefined;
      const runner = await run({
        pgPool: workerPool,
        concurrency: 2,
        pollInterval: 500,
        noHandleSignals: true,
        logger,
        taskList: { noop: async () => started?.(performance.now()) },
      });
      try {
        const latencies: number[] = [];
        for (let i = 0; i < warmup + samples; i++) {
          const start = new Promise<number>((resolve) => (started = resolve));
          const sent = performance.now();
          await utils.addJob('noop', {});
          const latency = (await start) - sent;
          if (i >= warmup) latencies.push(latency);
          await new Promise((resolve) => setTimeout(resolve, gapMs));
        }
        return latencies;
      } finally {
        await runner.stop();
        await utils.release();
        await workerPool.end();
      }
    },
    false,
  );
}
