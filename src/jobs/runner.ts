import { EventEmitter } from 'node:events';
import { run, type Runner, type Task, type TaskList, type WorkerEvents } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { workerLogger } from '../observability/logger.js';

/** A job handler: parse the payload, call the domain, throw to retry. */
export type JobHandler = (payload: unknown) => Promise<void>;

export interface JobRunner {
  /** graphile-worker ids of this runner's pool and workers (the pool's appears in locked_by). */
  workerIds(): string[];
  /** Takes no new jobs, lets running ones finish, releases its locks. */
  stop(): Promise<void>;
}

/** Starts graphile-worker with our handlers on the shared pool. */
export async function startJobRunner(options: {
  pool: pg.Pool;
  handlers: Record<string, JobHandler>;
  concurrency: number;
  pollIntervalMs: number;
  logger: Logger;
}): Promise<JobRunner> {
  const taskList: TaskList = {};
  for (const [name, handler] of Object.entries(options.handlers)) {
    const task: Task = async (payload) => await handler(payload);
    taskList[name] = task;
  }
  const workerIds = new Set<string>();
  // Listening before run() starts, so the first workers' ids are not missed.
  const events: WorkerEvents = new EventEmitter();
  // graphile-worker 0.16+ locks jobs in the name of the worker *pool* (locked_by = 'pool-…'), not
  // of each worker: record both, so a live replica's locks are recognised as its own.
  events.on('pool:create', ({ workerPool }) => workerIds.add(workerPool.id));
  events.on('pool:release', ({ workerPool }) => workerIds.delete(workerPool.id));
  events.on('worker:create', ({ worker }) => workerIds.add(worker.workerId));
  events.on('worker:release', ({ worker }) => workerIds.delete(worker.workerId));
  const runner: Runner = await run({
    events,
    pgPool: options.pool,
    taskList,
    concurrency: options.concurrency,
    pollInterval: options.pollIntervalMs,
    noHandleSignals: true,
    logger: workerLogger(options.logger),
  });
  return {
    workerIds: () => [...workerIds],
    async stop() {
      await runner.stop();
    },
  };
}
