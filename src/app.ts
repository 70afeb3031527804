import { sql } from 'kysely';
import { AssignmentService } from './assignment/assignment.service.js';
import { explainPlacement } from './assignment/placement.js';
import { agentRoutes } from './agents/agent.routes.js';
import { createDirectorySync } from './agents/directory-sync.js';
import type { DispatchConfig } from './config/config.js';
import { openDatabase, type DatabaseHandle } from './db/database.js';
import { isMigrated, migrateToLatest } from './db/migrate.js';
import { createApi } from './http/api.js';
import { createOpsApp } from './http/ops.js';
import { listen, type RunningServer } from './http/server.js';
import { newReplicaId } from './jobs/replicas.js';
import { ReplicaMonitor } from './jobs/replica-monitor.js';
import { startJobRunner, type JobRunner } from './jobs/runner.js';
import { workerLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { uuidSchema } from './tasks/task.schemas.js';
import { getTask, type TaskPolicy } from './tasks/task.service.js';
import { TaskRetention } from './tasks/retention.js';
import { DispatchError } from './http/errors.js';
import { LifecycleService, type WakeAgent } from './lifecycle/lifecycle.service.js';
import { EventsService } from './events/events.service.js';

export interface Dispatch {
  replicaId: string;
  apiPort: number;
  opsPort: number;
  database: DatabaseHandle;
  metrics: Metrics;
  assignment: AssignmentService;
  /** NATS (Hermes): outbox publisher, stats, task requests, agent notices. */
  events: EventsService;
  /** Graceful stop: no new requests or jobs, in-flight ones finish, pools close. */
  stop(): Promise<void>;
  /** Resolves (with why) if the job worker pool is lost; /ready answers 503 from then on. */
  workerPoolLost: Promise<string>;
}

export function taskPolicy(config: DispatchConfig): TaskPolicy {
  return {
    defaultTimeoutMs: config.assignment.default_timeout_ms,
    defaultStartTimeoutMs: config.lifecycle.default_start_timeout_ms,
    retry: { backoffBaseMs: config.lifecycle.retry_backoff_base_ms, backoffMaxMs: config.lifecycle.retry_backoff_max_ms },
  };
}

/** Builds one Dispatch replica on the database at `databaseUrl`: migrate, then serve and schedule. */
export async function startDispatch(config: DispatchConfig, databaseUrl: string, logger: Logger): Promise<Dispatch> {
  const sessionSettings = { 'dispatch.reassign_budget': String(config.lifecycle.reassign_budget) };
  const database = openDatabase(databaseUrl, config.database.pool_size, 'dispatch', sessionSettings);
  // graphile-worker gets a pool of its own (a LISTEN connection and one per worker), so its
  // connections can be told apart and a lost worker pool cannot starve the API of connections.
  const jobsDatabase = openDatabase(databaseUrl, config.worker.concurrency + 2, 'dispatch-worker', sessionSettings);
  let workerPoolLost!: (reason: string) => void;
  const lostPromise = new Promise<string>((resolve) => (workerPoolLost = resolve));
  const { db, pool } = database;
  const servers: RunningServer[] = [];
  let runner: JobRunner | undefined;
  let monitor: ReplicaMonitor | undefined;
  const replicaId = newReplicaId();
  const log = logger.child({ replica: replicaId });
  const maxConcurrent = config.assignment.max_concurrent_per_agent;
  const metrics = createMetrics();
  const policy = taskPolicy(config);
  // Warren mode when Warren and PromptForge are configured; otherwise agents register over REST.
  const directory = createDirectorySync(config, { db, logger: log, metrics });
  const wakeAgent: WakeAgent | null = directory
    ? async (agent) => {
        await directory.warren.wakeAgent(agent);
      }
    : null;
  const lifecycle = new LifecycleService(
    db,
    {
      retry: policy.retry,
      sweepIntervalMs: config.lifecycle.sweep_interval_ms,
      agentHeartbeatTimeoutMs: config.assignment.agent_heartbeat_timeout_ms,
      wakeTimeoutMs: config.assignment.wake_timeout_ms,
      wakeCooldownMs: config.assignment.wake_cooldown_ms,
    },
    wakeAgent,
    log,
    metrics,
  );
  const assignment = new AssignmentService(
    db,
    pool,
    {
      batchSize: config.assignment.batch_size,
      defaultMaxConcurrent: maxConcurrent,
      tickIntervalMs: config.assignment.tick_interval_ms,
      maintenance: { intervalMs: config.assignment.vacuum_interval_ms, deadTuples: config.assignment.vacuum_dead_tuples },
      onSleepingWinners: (agents) => {
        lifecycle.requestWakes(agents).catch((error: unknown) => log.warn({ err: error, agents }, 'could not enqueue wakes'));
      },
    },
    log,
    metrics,
  );
  const retention = new TaskRetention(
    pool,
    {
      keepFinishedMs: config.retention.keep_finished_ms,
      intervalMs: config.retention.interval_ms,
      batchSize: config.retention.batch_size,
    },
    log,
    metrics,
  );
  const events = new EventsService({
    url: config.hermes.url,
    statsIntervalMs: config.hermes.stats_interval_ms,
    db,
    policy,
    logger: log,
    metrics,
    clientName: `dispatch ${replicaId}`,
  });
  const stopAll = async () => {
    await Promise.all(servers.map((s) => s.close()));
    // No new tasks from NATS either; the outbox batch in flight commits before the pool closes.
    await events.stop();
    assignment.beginShutdown();
    await retention.stop();
    await lifecycle.stop();
    await directory?.sync.stop();
    await runner?.stop();
    await monitor?.stop();
    await database.close();
    await jobsDatabase.close();
  };
  try {
    const { applied } = await migrateToLatest(db, pool, workerLogger(log));
    if (applied.length > 0) log.info({ applied }, 'database migrated');

    runner = await startJobRunner({
      pool: jobsDatabase.pool,
      lostAfterMs: config.worker.pool_lost_after_ms,
      onLost: (reason) => {
        log.fatal({ reason }, 'job worker pool lost: this replica no longer runs jobs');
        workerPoolLost(reason);
      },
      handlers: { ...assignment.jobs(), ...lifecycle.jobs() },
      concurrency: config.worker.concurrency,
      pollIntervalMs: config.worker.poll_interval_ms,
      logger: log,
    });
    const workerIds = runner.workerIds;
    monitor = new ReplicaMonitor(db, pool, replicaId, workerIds, {
      intervalMs: config.worker.heartbeat_interval_ms,
      deadAfterMs: config.worker.dead_after_ms,
    }, log);
    await monitor.start();
    directory?.sync.start();
    assignment.start();
    lifecycle.start();
    retention.start();
    events.start();
    log.info({ mode: directory ? 'warren' : 'standalone' }, directory ? 'agents come from Warren and PromptForge' : 'standalone mode: agents register with PUT /api/v1/agents/:id');

    const api = createApi({
      db,
      logger: log,
      metrics,
      policy,
      adminToken: config.server.admin_token,
      rateLimitPerMinute: config.server.rate_limit_per_minute,
      bodyLimitBytes: config.server.body_limit_bytes,
      mount: (app, { admin }) => {
        app.route('/api/v1/agents', agentRoutes({ db, admin, defaultMaxConcurrent: maxConcurrent }));
        app.get('/api/v1/tasks/:id/placement', async (c) => {
          const id = c.req.param('id');
          if (!uuidSchema.safeParse(id).success) {
            throw new DispatchError('validation_failed', 'invalid task id', [{ field: 'id', message: 'must be a UUID' }]);
          }
          return c.json(await explainPlacement(db, await getTask(db, id.toLowerCase()), maxConcurrent));
        });
      },
    });
    const ops = createOpsApp({
      registry: metrics.registry,
      isReady: async () => {
        if (!runner?.alive()) return false;
        await sql`SELECT 1`.execute(db);
        return await isMigrated(db);
      },
    });
    servers.push(await listen(api, config.server.host, config.server.port));
    servers.push(await listen(ops, config.server.host, config.server.metrics_port));
    const [apiServer, opsServer] = servers as [RunningServer, RunningServer];
    log.info({ apiPort: apiServer.port, opsPort: opsServer.port }, 'dispatch listening');
    return { replicaId, apiPort: apiServer.port, opsPort: opsServer.port, database, metrics, assignment, events, stop: stopAll, workerPoolLost: lostPromise };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
