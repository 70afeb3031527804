import { headers as createHeaders, type JetStreamClient, type MsgHdrs, type NatsConnection } from 'nats';
import { BackgroundService } from '../background/service.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { TaskPolicy } from '../tasks/task.service.js';
import { AgentEventsSubscriber } from './agent-events.js';
import { NatsLink, type NatsLinkOptions } from './nats-link.js';
import { discardStaleOwedEvents } from './outbox.queries.js';
import type { Tracer } from '../observability/tracing.js';
import { OutboxPublisher, type OutboxPublisherOptions, type PublishFn } from './outbox-publisher.js';
import { StatsPublisher } from './stats-publisher.js';
import { ensureEventStream, ensureTaskRequestConsumer } from './stream.js';
import { encodeBody } from './subjects.js';
import { TaskRequestConsumer } from './task-requests.js';

export interface EventsOptions {
  /** hermes.url; empty disables NATS. */
  url: string;
  statsIntervalMs: number;
  db: Db;
  policy: TaskPolicy;
  logger: Logger;
  metrics: Metrics;
  /** Shown as the client name in NATS monitoring. */
  clientName: string;
  /** hermes.accept_requests: false makes no swarm.task.request consumer (another service takes them). */
  acceptRequests?: boolean;
  /** hermes.requesters: the requesters swarm.task.request accepts; empty, any. */
  /** Spans for tasks created from `swarm.task.request` with a traceparent header. */
  tracer?: Tracer;
  allowedRequesters?: readonly string[];
  outbox?: Pick<OutboxPublisherOptions, 'pollIntervalMs' | 'batchSize' | 'backlogSampleMs'>;
  connection?: Pick<NatsLinkOptions, 'login' | 'retryInitialMs' | 'retryMaxMs' | 'reconnectTimeWaitMs' | 'connectTimeoutMs'>;
  /** How long a JetStream publish waits for its acknowledgement. */
  publishTimeoutMs?: number;
  /** Without NATS: owed events older than this are dropped (see discardStaleOwedEvents). */
  discardOwedAfterMs?: number;
}

export interface EventsStatus {
  enabled: boolean;
  connected: boolean;
  /** DISPATCH_EVENTS and the request consumer are provisioned on the current connection. */
  streamReady: boolean;
  consumingRequests: boolean;
  agentEvents: boolean;
}

/** Headroom under the server's max_payload for the subject and headers. */
const HEADER_ALLOWANCE = 1_024;
const DISCARD_CHECK_MS = 10 * 60_000;
/** Stale owed events dropped per statement. */
const DISCARD_BATCH = 10_000;

/**
 * Hermes: everything Dispatch does with NATS, started after migration and stopped before the
 * pool closes. Publishing (the outbox, stats) and consuming (task requests, agent notices) all
 * ride the one connection of NatsLink and pause while it is down.
 */
export class EventsService {
  private readonly log: Logger;
  private readonly link: NatsLink | null;
  private readonly publisher: OutboxPublisher;
  private readonly stats: StatsPublisher;
  private readonly requests: TaskRequestConsumer;
  private readonly agentEvents: AgentEventsSubscriber;
  private readonly provisioner: JetStreamProvisioner;
  private js: { nc: NatsConnection; client: JetStreamClient } | null = null;
  private streamReady = false;
  private requestsFor: NatsConnection | null = null;
  private running = false;
  private readonly owedEventsTrimmer: OwedEventsTrimmer;

  constructor(private readonly options: EventsOptions) {
    this.log = options.logger.child({ component: 'events' });
    const canPublish = () => this.streamReady && this.link?.connection != null;
    const publish: PublishFn = (message) => this.publish(message);
    this.publisher = new OutboxPublisher({ db: options.db, publish, canPublish, logger: this.log, metrics: options.metrics, ...options.outbox });
    this.stats = new StatsPublisher({ db: options.db, publish, canPublish, intervalMs: options.statsIntervalMs, logger: this.log });
    this.requests = new TaskRequestConsumer({
      db: options.db,
      policy: options.policy,
      allowedRequesters: options.allowedRequesters,
      tracer: options.tracer,
      publish,
      logger: this.log,
      metrics: options.metrics,
      // Only the stream and consumer: the consumer's own loop retries after this.
      provision: async () => {
        const nc = this.link?.connection;
        if (!nc) throw new Error('NATS is not connected');
        await this.ensureStreamAndConsumer(nc);
      },
    });
    this.agentEvents = new AgentEventsSubscriber({ db: options.db, logger: this.log });
    this.provisioner = new JetStreamProvisioner(() => this.provision(), () => this.link?.connection != null, this.log);
    this.owedEventsTrimmer = new OwedEventsTrimmer(options.db, options.discardOwedAfterMs ?? 24 * 3_600_000, this.log);
    this.link = options.url.trim()
      ? new NatsLink({
          url: options.url,
          name: options.clientName,
          logger: this.log,
          onUp: (nc) => this.onUp(nc),
          onDown: () => options.metrics.natsConnected.set(0),
          ...options.connection,
        })
      : null;
  }

  status(): EventsStatus {
    return {
      enabled: this.link !== null,
      connected: this.link?.connection != null,
      streamReady: this.streamReady,
      consumingRequests: this.requests.active,
      agentEvents: this.agentEvents.active,
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.options.metrics.natsConnected.set(0);
    if (!this.link) {
      this.log.info('hermes.url is empty: NATS events are disabled');
      this.owedEventsTrimmer.start();
      return;
    }
    // Ready before the link can report a connection and ask it for provisioning.
    this.provisioner.start();
    this.link.start();
    this.publisher.start();
    this.stats.start();
  }

  /** Events committed on this replica (a request, an assignment batch): see OutboxPublisher.eventsCommitted. */
  eventsCommitted(): void {
    this.publisher.eventsCommitted();
  }

  /**
   * Stops consuming first (no new tasks from NATS), lets the outbox batch in flight finish and
   * commit, then drains and closes the connection. Events not yet published stay owed.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.owedEventsTrimmer.stop();
    const provisionerStopped = this.provisioner.stop();
    await this.requests.stop();
    await this.agentEvents.stop();
    await Promise.all([this.publisher.stop(), this.stats.stop()]);
    await provisionerStopped;
    await this.link?.stop();
    this.options.metrics.natsConnected.set(0);
  }

  private onUp(nc: NatsConnection): void {
    this.options.metrics.natsConnected.set(1);
    // The subscription is restored by the client on reconnect; only a new connection needs one.
    void this.agentEvents.start(nc).catch((error: unknown) => this.log.warn({ err: error }, 'could not subscribe to agent notices'));
    this.provisioner.request();
  }

  private async ensureStreamAndConsumer(nc: NatsConnection): Promise<void> {
    const jsm = await nc.jetstreamManager();
    const stream = await ensureEventStream(jsm, this.log);
    if (this.options.acceptRequests !== false) await ensureTaskRequestConsumer(jsm, stream);
    this.streamReady = true;
  }

  /** Stream and consumer, then the request consumer's pull loop on this connection. */
  private async provision(): Promise<void> {
    const nc = this.link?.connection;
    if (!nc) throw new Error('NATS is not connected');
    await this.ensureStreamAndConsumer(nc);
    if (this.running && this.options.acceptRequests !== false && this.requestsFor !== nc) {
      await this.requests.stop();
      // stop() may have run meanwhile: a pull loop started now would outlive it and hold the drain.
      if (!this.running) return;
      this.requestsFor = nc;
      this.requests.consumeFrom(this.jetstream(nc));
    }
    this.publisher.nudge();
  }

  private jetstream(nc: NatsConnection): JetStreamClient {
    if (this.js?.nc !== nc) this.js = { nc, client: nc.jetstream() };
    return this.js.client;
  }

  private async publish(message: Parameters<PublishFn>[0]): ReturnType<PublishFn> {
    const nc = this.link?.connection;
    if (!nc) throw new Error('NATS is not connected');
    const maxBytes = (nc.info?.max_payload ?? 1024 * 1024) - HEADER_ALLOWANCE;
    try {
      const ack = await Promise.race([
        this.jetstream(nc).publish(message.subject, encodeBody(message.body, maxBytes), {
          msgID: message.msgId,
          timeout: this.options.publishTimeoutMs ?? 5_000,
          ...(message.headers ? { headers: natsHeaders(message.headers) } : {}),
        }),
        this.link!.whenLost(),
      ]);
      return { duplicate: ack.duplicate };
    } catch (error) {
      // 503 "no responders": no stream captures the subject (deleted, or the server lost it).
      if ((error as { code?: string }).code === '503') {
        this.streamReady = false;
        this.provisioner.request();
      }
      throw error;
    }
  }
}

const PROVISION_RETRY_INITIAL_MS = 500;
const PROVISION_RETRY_MAX_MS = 10_000;

/**
 * Provisions the stream and consumer when asked (a new connection, a reconnect, a stream gone
 * missing), retrying with backoff while it fails: JetStream may still be starting.
 */
class JetStreamProvisioner extends BackgroundService<void> {
  private wanted = false;
  private retryDelayMs = PROVISION_RETRY_INITIAL_MS;

  constructor(
    private readonly provision: () => Promise<void>,
    private readonly connected: () => boolean,
    logger: Logger,
  ) {
    super(
      'jetstream provisioning',
      {
        intervalMs: PROVISION_RETRY_MAX_MS,
        dependency: 'jetstream',
        failureMessage: 'JetStream unavailable: could not provision DISPATCH_EVENTS; retrying',
        recoveryMessage: 'JetStream available: stream and consumer provisioned',
      },
      logger,
    );
  }

  /** Provision at the next pass, which starts now. */
  request(): void {
    this.wanted = true;
    this.nudge();
  }

  async runOnce(): Promise<void> {
    if (!this.wanted) return;
    if (!this.connected()) throw new Error('NATS is not connected');
    // Cleared first: a request made while this pass runs is served by the next one.
    this.wanted = false;
    try {
      await this.provision();
    } catch (error) {
      this.wanted = true;
      throw error;
    }
  }

  /** Idle until asked; while it fails, a backoff doubling from 500 ms to 10 s. */
  protected override delayAfter(): number {
    if (!this.wanted) {
      this.retryDelayMs = PROVISION_RETRY_INITIAL_MS;
      return PROVISION_RETRY_MAX_MS;
    }
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, PROVISION_RETRY_MAX_MS);
    return delay;
  }
}

/** Without NATS, events owed to it pile up in the outbox: drops those older than `maxAgeMs`. */
class OwedEventsTrimmer extends BackgroundService<number> {
  constructor(
    private readonly db: Db,
    private readonly maxAgeMs: number,
    logger: Logger,
  ) {
    super('outbox trimmer', { intervalMs: DISCARD_CHECK_MS, failureMessage: 'could not trim the event outbox' }, logger);
  }

  async runOnce(): Promise<number> {
    const dropped = await discardStaleOwedEvents(this.db, this.maxAgeMs, DISCARD_BATCH);
    if (dropped > 0) this.logger.info({ dropped }, 'NATS is not configured: dropped events owed to it for over a day');
    return dropped;
  }

  /** A full batch: more are stale (events arrive faster than a batch per check), so go on at once. */
  protected override delayAfter(dropped: number | undefined): number {
    return dropped === DISCARD_BATCH ? 0 : DISCARD_CHECK_MS;
  }
}

function natsHeaders(values: Record<string, string>): MsgHdrs {
  const hdrs = createHeaders();
  for (const [key, value] of Object.entries(values)) hdrs.set(key, value);
  return hdrs;
}
