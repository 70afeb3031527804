import { startDispatch, type Dispatch } from './app.js';
import { ConfigError, loadConfig } from './config/load.js';
import { configuredDatabase, type ConfiguredDatabase } from './db/configured-database.js';
import { EmbeddedPostgresError } from './db/embedded-access.js';
import { isDatabaseUnavailable } from './db/unavailable.js';
import { createLogger } from './observability/logger.js';

/** The `dispatch` process: config -> database (embedded unless one is configured) -> replica. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`dispatch: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logging);
  // graphile-worker 0.17 settles a finished job (completeJob/failJob in its worker loop) without
  // awaiting the promise: when PostgreSQL goes away at that instant (restart, failover) the
  // rejection has no handler and Node kills the replica (found by the chaos suite's PostgreSQL
  // restart). The job stays locked and is retried later; the replica carries on and recovers with
  // the database. Any other unhandled rejection is still fatal.
  process.on('unhandledRejection', (reason) => {
    if (isDatabaseUnavailable(reason)) {
      logger.warn({ err: reason }, 'database unavailable while a background job was being settled; carrying on');
      return;
    }
    logger.fatal({ err: reason }, 'unhandled promise rejection');
    logger.flush();
    process.exit(1);
  });
  let database: ConfiguredDatabase;
  try {
    database = await configuredDatabase(config, logger);
  } catch (error) {
    // What to do fits in one line; a stack trace would only hide it.
    const line = error instanceof EmbeddedPostgresError ? error.message : `embedded PostgreSQL failed to start: ${error instanceof Error ? error.message : String(error)}`;
    console.error(`dispatch: ${line}`);
    process.exit(1);
  }
  const { embedded } = database;
  let dispatch: Dispatch;
  try {
    dispatch = await startDispatch(config, database.url, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'dispatch failed to start');
    await embedded?.stop();
    process.exit(1);
  }
  let stopping = false;
  // A replica whose job worker pool is gone still answers HTTP but no longer assigns or times
  // out anything: say so on /ready (already 503), give the load balancer a moment, then exit so
  // the orchestrator starts a healthy one.
  void dispatch.workerPoolLost.then(async () => {
    if (stopping) return;
    stopping = true;
    await new Promise((resolve) => setTimeout(resolve, config.worker.unready_before_exit_ms));
    const force = setTimeout(() => process.exit(1), config.server.shutdown_grace_ms);
    force.unref();
    await dispatch.stop().catch((error: unknown) => logger.error({ err: error }, 'stop after losing the job worker pool failed'));
    await embedded?.stop();
    logger.flush();
    process.exit(1);
  });
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight work');
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.server.shutdown_grace_ms + 5_000);
    force.unref();
    await dispatch.stop();
    await embedded?.stop();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

await main();
