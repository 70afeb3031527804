import { AssignmentService } from './assignment/assignment.service.js';
import { createDirectorySync } from './agents/directory-sync.js';
import { AssignmentHub } from './agents/assignment-hub.js';
import type { DispatchConfig } from './config/config.js';
import { newClient, type DatabaseHandle } from './db/database.js';
import { APPLICATION_NAME, connectionBudget, openReplicaConnections, warnIfSettingsLost } from './db/connections.js';
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
import { createTracer } from './observability/tracing.js';
import { registerQueueMetrics } from './tasks/queue-metrics.js';
import { registerScopeMetrics } from './scopes/scope-metrics.js';
import type { TaskPolicy } from './tasks/task.service.js';
import { apiRouters } from './routes.js';
import { TaskRetention } from './tasks/retention.js';
import { ScheduleRunner } from './schedules/schedule.runner.js';
import { CounterFolding } from './tasks/counter-folding.js';
import { LiveFeed } from './ui/live-feed.js';

/** How often the scope counters' appended changes and the agents' releases are folded (src/tasks/counter-folding.ts). */
const COUNTER_FOLD_MS = 1_000;
import { LifecycleService, type WakeAgent } from './lifecycle/lifecycle.service.js';
import { DueTimer } from './lifecycle/due-timer.js';
import { NotificationListener } from './db/listener.js';
import { ADVISORY_LOCK, NOTIFY_CHANNEL } from './db/contract.js';
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
  // API, direct (session locks) and graphile-worker pools: see src/db/connections.ts. A lost
  // worker pool cannot starve the API of connections, and the API pool may go through PgBouncer.
  const connections = openReplicaConnections(config, databaseUrl);
  const directUrl = config.database.direct_url || databaseUrl;
  const { api: database, direct, jobs: jobsDatabase } = connections;
  let workerPoolLost!: (reason: string) => void;
  const lostPromise = new Promise<string>((resolve) => (workerPoolLost = resolve));
  const { db } = database;
  const servers: RunningServer[] = [];
  let runner: JobRunner | undefined;
  let monitor: ReplicaMonitor | undefined;
  const replicaId = newReplicaId();
  const log = logger.child({ replica: replicaId });
  const maxConcurrent = config.assignment.max_concurrent_per_agent;
  const metrics = createMetrics();
  registerQueueMetrics(metrics.registry, { db, logger: log, maxScopes: config.metrics.max_scopes, defaultMaxConcurrent: maxConcurrent });
  registerScopeMetrics(metrics.registry, { db, logger: log, maxScopes: config.metrics.max_scopes });
  const policy = taskPolicy(config);
  const tracer = await createTracer(config.tracing, log, replicaId);
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
    { api: database.pool, direct: direct.pool },
    {
      batchSize: config.assignment.batch_size,
      parallelBatches: config.assignment.parallel_batches,
      defaultMaxConcurrent: maxConcurrent,
      agingMs: config.assignment.aging_ms,
      recordedCandidates: config.assignment.recorded_candidates,
      tickIntervalMs: config.assignment.tick_interval_ms,
      maintenance: {
        intervalMs: config.assignment.vacuum_interval_ms,
        deadTuples: config.assignment.vacuum_dead_tuples,
        restFactor: config.assignment.vacuum_rest_factor,
        leads: () => dueTimerLease.holds(),
      },
      tracer,
      // The batch's `assigned` events go to NATS now, not at the outbox's next poll, and to the
      // streams open here now, not when the notification comes back from the server.
      onAssigned: () => {
        assignmentHub.notified();
        events.eventsCommitted();
      },
      onSleepingWinners: (agents) => {
        lifecycle.requestWakes(agents).catch((error: unknown) => log.warn({ err: error, agents }, 'could not enqueue wakes'));
      },
    },
    log,
    metrics,
  );
  // One LISTEN connection per replica for every channel; it needs a session of its own, so it
  // never goes through a transaction pooler (database.direct_url).
  const listener = new NotificationListener(
    {
      newClient: () => newClient(directUrl, APPLICATION_NAME.listen),
      channels: {
        [NOTIFY_CHANNEL.due]: (payload) => dueTimer.notify(Number(payload)),
        [NOTIFY_CHANNEL.assignments]: (payload) => assignmentHub.notified(/^\d+$/.test(payload) ? BigInt(payload) : undefined),
        [NOTIFY_CHANNEL.assign]: () => assignment.wake(),
      },
      onListening: () => {
        dueTimer.resync();
        assignmentHub.notified();
        assignment.wake();
      },
    },
    log,
  );
  // The lease lives on the LISTEN connection, so it goes with the replica.
  const dueTimerLease = {
    holds: () => listener.holds(ADVISORY_LOCK.dueTimer),
    tryTake: () => listener.tryHold(ADVISORY_LOCK.dueTimer),
  };
  const dueTimer = new DueTimer(db, dueTimerLease, { safetyIntervalMs: config.assignment.tick_interval_ms, retry: policy.retry }, log, metrics);
  const retention = new TaskRetention(
    direct.pool,
    {
      keepFinishedMs: config.retention.keep_finished_ms,
      intervalMs: config.retention.interval_ms,
      batchSize: config.retention.batch_size,
    },
    log,
    metrics,
  );
  const counters = new CounterFolding(db, COUNTER_FOLD_MS, dueTimerLease.holds, log);
  const schedules = new ScheduleRunner(
    { db, policy, metrics },
    { intervalMs: config.schedules.poll_interval_ms, lateAfterMs: config.schedules.late_after_ms, batchSize: 20 },
    log,
  );
  const events = new EventsService({
    url: config.hermes.url,
    statsIntervalMs: config.hermes.stats_interval_ms,
    outbox: { pollIntervalMs: config.hermes.outbox_poll_interval_ms },
    db,
    policy,
    logger: log,
    metrics,
    clientName: `dispatch ${replicaId}`,
    acceptRequests: config.hermes.accept_requests,
    allowedRequesters: config.hermes.requesters,
    tracer,
    connection: { login: { options: natsConnectOptions(config.hermes), settings: loginSettings(config.hermes) } },
  });
  const assignmentHub = new AssignmentHub(
    db,
    listener,
    {
      keepaliveMs: config.server.stream_keepalive_ms,
      // Three refreshes per timeout: one lost write does not get a connected agent declared stopped.
      heartbeatIntervalMs: directory ? null : Math.floor(config.assignment.agent_heartbeat_timeout_ms / 3),
    },
    log,
  );
  const feed = new LiveFeed(db, log);
  const stopAll = async () => {
    // Open streams (agents' assignment streams, the dashboard's) never finish on their own: end
    // them, or the servers wait for them forever.
    await assignmentHub.stop();
    await feed.stop();
    await Promise.all(servers.map((s) => s.close()));
    // No new tasks from NATS either; the outbox batch in flight commits before the pool closes.
    await events.stop();
    await assignment.stop();
    await retention.stop();
    await schedules.stop();
    await counters.stop();
    await lifecycle.stop();
    await listener.stop();
    await dueTimer.stop();
    await directory?.sync.stop();
    await runner?.stop();
    await monitor?.stop();
    await tracer.stop();
    await connections.close();
  };
  try {
    const { applied } = await migrateToLatest(direct.db, direct.pool, workerLogger(log));
    if (applied.length > 0) log.info({ applied }, 'database migrated');
    log.info({ connections: connectionBudget(config), pooled: connections.pooled }, 'PostgreSQL connections at most (api + direct + jobs + listen)');
    await warnIfSettingsLost(connections, config, log);

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
    monitor = new ReplicaMonitor(db, direct.pool, replicaId, workerIds, {
      intervalMs: config.worker.heartbeat_interval_ms,
      deadAfterMs: config.worker.dead_after_ms,
      onCount: (live) => metrics.replicasLive.set(live),
    }, log);
    await monitor.start();
    directory?.sync.start();
    assignment.start();
    lifecycle.start();
    dueTimer.start();
    retention.start();
    schedules.start();
    counters.start();
    events.start();
    await assignmentHub.start();
    listener.start();
    feed.start();
    log.info({ mode: directory ? 'warren' : 'standalone' }, directory ? 'agents come from Warren and PromptForge' : 'standalone mode: agents register with PUT /api/v1/agents/:id');

    const authMode = resolveAuthMode(config, log);
    if (authMode === 'token') await bootstrapAdmin(db, config, log);
    const credentials = new CredentialVerifier(db);
    const auth = { mode: authMode, adminToken: config.server.admin_token, verify: (token: string) => credentials.verify(token) };
    const api = createApi({
      logger: log,
      metrics,
      auth,
      rateLimitPerMinute: config.server.rate_limit_per_minute,
      liveReplicas: () => monitor?.liveReplicas ?? 1,
      bodyLimitBytes: config.server.body_limit_bytes,
      // Events a request wrote go to NATS now, not at the outbox's next poll.
      afterWrite: () => events.eventsCommitted(),
      routers: apiRouters({
        db,
        metrics,
        tracer,
        policy,
        adminToken: config.server.admin_token,
        defaultMaxConcurrent: maxConcurrent,
        agingMs: config.assignment.aging_ms,
        agentsFromWarren: Boolean(directory),
        auth,
        feed,
        assignmentHub,
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
