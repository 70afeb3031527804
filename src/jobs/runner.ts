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
  /** False once the worker pool is lost (see `onLost`); it never comes back. */
  alive(): boolean;
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
  /** How long fetching jobs may keep failing before the pool counts as lost. */
  lostAfterMs: number;
  /** Called once when the pool is lost: its runner settled, or it cannot reach the database. */
  onLost: (reason: string) => void;
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
  // A fetch that fails is retried by graphile-worker forever, which is right for a database
  // restart but leaves a pool whose connections never come back looking alive: judge it by how
  // long fetching has failed without one success in between.
  let failingSince: number | null = null;
  events.on('worker:getJob:error', () => (failingSince ??= Date.now()));
  events.on('worker:getJob:empty', () => (failingSince = null));
  events.on('job:start', () => (failingSince = null));
  const runner: Runner = await run({
    events,
    pgPool: options.pool,
    taskList,
    concurrency: options.concurrency,
    pollInterval: options.pollIntervalMs,
    noHandleSignals: true,
    logger: workerLogger(options.logger),
  });
  let stopping = false;
  let lost = false;
  const lose = (reason: string) => {
    if (stopping || lost) return;
    lost = true;
    clearInterval(watch);
    options.onLost(reason);
  };
  const watch = setInterval(() => {
    if (failingSince !== null && Date.now() - failingSince > options.lostAfterMs) {
      lose(`fetching jobs has failed for ${Date.now() - failingSince} ms`);
    }
  }, Math.min(1_000, options.lostAfterMs / 4));
  watch.unref();
  // 0.17 settles the runner's promise when its pool shuts itself down (a worker that exited, a
  // job it could not release), sometimes without rejecting: either way nothing runs jobs any more.
  runner.promise.then(
    () => lose('the job runner stopped by itself'),
    (error: unknown) => lose(`the job runner failed: ${error instanceof Error ? error.message : String(error)}`),
  );
  return {
    workerIds: () => [...workerIds],
    alive: () => !lost,
    async stop() {
      stopping = true;
      clearInterval(watch);
      await runner.stop();
    },
  };
}
