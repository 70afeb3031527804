import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per Dispatch instance, so several instances in one test process never collide. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'dispatch_process_' });
  const httpRequests = new Counter({
    name: 'dispatch_http_requests_total',
    help: 'HTTP requests by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'dispatch_http_request_duration_seconds',
    help: 'HTTP request duration by method and route.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const taskTransitions = new Counter({
    name: 'dispatch_task_transitions_total',
    help: 'Task state changes made by this replica, by event (created, assigned, completed, failed, ...).',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  const assignmentBatches = new Histogram({
    name: 'dispatch_assignment_batch_seconds',
    help: 'Duration of one assignment transaction (claim, score, update, events).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const assignmentBatchSteps = new Histogram({
    name: 'dispatch_assignment_batch_step_seconds',
    help:
      "One step of an assignment transaction on the replica's clock (agents: BEGIN and the first statement, which locks the agents and claims; claim: what controlled scopes add; place; write: with the COMMIT; commit: what follows): " +
      "PostgreSQL's time and the round trip, including the wait for the replica's event loop.",
    labelNames: ['step'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  const integrationErrors = new Counter({
    name: 'dispatch_integration_errors_total',
    help: 'Failed calls to Warren or PromptForge, by service and reason.',
    labelNames: ['service', 'reason'] as const,
    registers: [registry],
  });
  const integrationUp = new Gauge({
    name: 'dispatch_integration_up',
    help: '1 when the last call to the service succeeded, 0 when it failed.',
    labelNames: ['service'] as const,
    registers: [registry],
  });
  const waitingTooLong = new Counter({
    name: 'dispatch_tasks_waiting_too_long_total',
    help: 'Tasks that stayed pending past their start timeout.',
    registers: [registry],
  });
  // NATS events (src/events): the outbox's backlog is database-wide, sampled by every replica.
  const outboxBacklog = new Gauge({
    name: 'dispatch_events_outbox_backlog',
    help: 'Task events committed but not yet acknowledged by JetStream (all replicas).',
    registers: [registry],
  });
  const outboxLagSeconds = new Gauge({
    name: 'dispatch_events_outbox_lag_seconds',
    help: 'Age of the oldest task event not yet acknowledged by JetStream; 0 when none is owed.',
    registers: [registry],
  });
  const tasksDeleted = new Counter({
    name: 'dispatch_tasks_deleted_total',
    help: 'Finished tasks (with their events) this replica deleted past retention.keep_finished_ms.',
    registers: [registry],
  });
  const eventsPublished = new Counter({
    name: 'dispatch_events_published_total',
    help: 'Task events this replica published to JetStream, by stored event name.',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  const natsConnected = new Gauge({
    name: 'dispatch_events_nats_connected',
    help: '1 while this replica is connected to NATS, else 0.',
    registers: [registry],
  });
  const taskRequests = new Counter({
    name: 'dispatch_events_task_requests_total',
    help: 'swarm.task.request messages handled by this replica, by outcome (created, replayed, rejected, error).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const replicasLive = new Gauge({
    name: 'dispatch_replicas_live',
    help: 'Replicas that heartbeat within worker.dead_after_ms, as this replica last counted them; each enforces rate_limit_per_minute divided by this.',
    registers: [registry],
  });
  return {
    registry,
    replicasLive,
    httpRequests,
    httpDuration,
    taskTransitions,
    assignmentBatches,
    assignmentBatchSteps,
    integrationErrors,
    integrationUp,
    waitingTooLong,
    tasksDeleted,
    outboxBacklog,
    outboxLagSeconds,
    eventsPublished,
    natsConnected,
    taskRequests,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
