import type { DispatchConfig } from './config/config.js';
import { openDatabase, type DatabaseHandle } from './db/database.js';
import { isMigrated, migrateToLatest } from './db/migrate.js';
import { createApi } from './http/api.js';
import { createOpsApp } from './http/ops.js';
import { listen, type RunningServer } from './http/server.js';
import { workerLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import type { TaskPolicy } from './tasks/task.service.js';
import { sql } from 'kysely';

export interface Dispatch {
  apiPort: number;
  opsPort: number;
  database: DatabaseHandle;
  metrics: Metrics;
  /** Graceful stop: no new requests or jobs, in-flight ones finish, pools close. */
  stop(): Promise<void>;
}

export function taskPolicy(config: DispatchConfig): TaskPolicy {
  return {
    defaultTimeoutMs: config.assignment.default_timeout_ms,
    defaultStartTimeoutMs: config.lifecycle.default_start_timeout_ms,
    retry: { backoffBaseMs: config.lifecycle.retry_backoff_base_ms, backoffMaxMs: config.lifecycle.retry_backoff_max_ms },
  };
}

/** Builds one Dispatch replica on the database at `databaseUrl`: migrate, then serve. */
export async function startDispatch(config: DispatchConfig, databaseUrl: string, logger: Logger): Promise<Dispatch> {
  const database = openDatabase(databaseUrl, config.database.pool_size);
  const servers: RunningServer[] = [];
  try {
    const { applied } = await migrateToLatest(database.db, database.pool, workerLogger(logger));
    if (applied.length > 0) logger.info({ applied }, 'database migrated');
    const metrics = createMetrics();
    const api = createApi({
      db: database.db,
      logger,
      metrics,
      policy: taskPolicy(config),
      adminToken: config.server.admin_token,
      rateLimitPerMinute: config.server.rate_limit_per_minute,
      bodyLimitBytes: config.server.body_limit_bytes,
    });
    const ops = createOpsApp({
      registry: metrics.registry,
      isReady: async () => {
        await sql`SELECT 1`.execute(database.db);
        return await isMigrated(database.db);
      },
    });
    const apiServer = await listen(api, config.server.host, config.server.port);
    servers.push(apiServer);
    const opsServer = await listen(ops, config.server.host, config.server.metrics_port);
    servers.push(opsServer);
    logger.info({ apiPort: apiServer.port, opsPort: opsServer.port }, 'dispatch listening');
    return {
      apiPort: apiServer.port,
      opsPort: opsServer.port,
      database,
      metrics,
      async stop() {
        await Promise.all(servers.map((s) => s.close()));
        await database.close();
      },
    };
  } catch (error) {
    await Promise.all(servers.map((s) => s.close()));
    await database.close();
    throw error;
  }
}
