import { AssignmentService } from './assignment/assignment.service.js';
import { createDirectorySync } from './agents/directory-sync.js';
import type { DispatchConfig } from './config/config.js';
import { openDatabase, type DatabaseHandle } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';
import { isDatabaseReady } from './db/readiness.queries.js';
import { createApi } from './http/api.js';
import { bootstrapAdmin, resolveAuthMode } from './auth/auth-mode.js';
import { CredentialVerifier } from './auth/credentials.service.js';
import { createOpsApp } from './http/ops.js';
import { listen, type RunningServer } from './http/server.js';
import { newReplicaId } from './jobs/replicas.js';
import { ReplicaMonitor } from './jobs/replica-monitor.js';
import { startJobRunner, type JobRunner } from './jobs/runner.js';
import { workerLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { registerQueueMetrics } from './tasks/queue-metrics.js';
import type { TaskPolicy } from './tasks/task.service.js';
import { apiRouters } from './routes.js';
import { TaskRetention } from './tasks/retention.js';
import { ScopeCounterFolding } from './tasks/scope-counter-folding.js';

/** How often one replica folds the scope counters' appended changes (a scrape sums what is left). */
const SCOPE_COUNTER_FOLD_MS = 1_000;
import { LifecycleService, type WakeAgent } from './lifecycle/lifecycle.service.js';
import { EventsService } from './events/events.service.js';
import { loginSettings, natsConnectOptions } from './events/nats-auth.js';

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
  registerQueueMetrics(metrics.registry, { db, logger: log, maxScopes: config.metrics.max_scopes, defaultMaxConcurrent: maxConcurrent });
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
  const scopeCounters = new ScopeCounterFolding(db, SCOPE_COUNTER_FOLD_MS, log);
  const events = new EventsService({
    url: config.hermes.url,
    statsIntervalMs: config.hermes.stats_interval_ms,
    db,
    policy,
    logger: log,
    metrics,
    clientName: `dispatch ${replicaId}`,
    acceptRequests: config.hermes.accept_requests,
    allowedRequesters: config.hermes.requesters,
    connection: { login: { options: natsConnectOptions(config.hermes), settings: loginSettings(config.hermes) } },
  });
  const stopAll = async () => {
    await Promise.all(servers.map((s) => s.close()));
    // No new tasks from NATS either; the outbox batch in flight commits before the pool closes.
    await events.stop();
    await assignment.stop();
    await retention.stop();
    await scopeCounters.stop();
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
    scopeCounters.start();
    events.start();
    log.info({ mode: directory ? 'warren' : 'standalone' }, directory ? 'agents come from Warren and PromptForge' : 'standalone mode: agents register with PUT /api/v1/agents/:id');

    const authMode = resolveAuthMode(config, log);
    if (authMode === 'token') await bootstrapAdmin(db, config, log);
    const credentials = new CredentialVerifier(db);
    const api = createApi({
      logger: log,
      metrics,
      auth: { mode: authMode, adminToken: config.server.admin_token, verify: (token) => credentials.verify(token) },
      rateLimitPerMinute: config.server.rate_limit_per_minute,
      bodyLimitBytes: config.server.body_limit_bytes,
      routers: apiRouters({
        db,
        metrics,
        policy,
        adminToken: config.server.admin_token,
        defaultMaxConcurrent: maxConcurrent,
        agentsFromWarren: Boolean(directory),
      }),
    });
    const ops = createOpsApp({
      registry: metrics.registry,
      // Not ready once the job worker pool is lost (the process exits soon after), nor without the database.
      isReady: async () => (runner?.alive() ?? false) && (await isDatabaseReady(db)),
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
