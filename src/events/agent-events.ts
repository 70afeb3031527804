import type { NatsConnection, Subscription } from 'nats';
import { applyAgentStatus } from '../agents/directory-sync.js';
import type { Db } from '../db/database.js';
import type { AgentStatus } from '../db/columns.js';
import type { Logger } from '../observability/logger.js';
import { AGENT_EVENTS_SUBJECT, parseAgentSubject, type AgentLifecycle } from './subjects.js';

/**
 * Warren's lifecycle notice -> the directory status. `started` and `ready` both mean the agent
 * can take work (and complete a wake in progress); the database's own rules do the rest: the
 * agent trigger wakes the assigner for a ready agent, and returns a stopped agent's tasks to
 * pending (migration 0003).
 */
export const STATUS_FOR_LIFECYCLE: Record<AgentLifecycle, AgentStatus> = {
  started: 'ready',
  ready: 'ready',
  degraded: 'degraded',
  stopped: 'stopped',
};

export interface AgentEventsOptions {
  db: Db;
  logger: Logger;
}

/**
 * Applies `swarm.agent.<name>.<lifecycle>` to dispatch_agents. A plain subscription: every
 * replica receives every notice and applies it; setting a status is idempotent (the stop trigger
 * fires only on the change to stopped), so the second and third replica change nothing. Notices
 * are applied one at a time in arrival order. Agents Dispatch does not know are ignored: the
 * directory (registration, the Warren sync) decides who exists.
 */
export class AgentEventsSubscriber {
  private subscription: Subscription | null = null;
  private loopDone: Promise<void> = Promise.resolve();

  constructor(private readonly options: AgentEventsOptions) {}

  get active(): boolean {
    return this.subscription !== null && !this.subscription.isClosed();
  }

  /** Subscribes on `nc`; resolves once the server has registered the subscription. */
  async start(nc: NatsConnection): Promise<void> {
    // Restored by the client on reconnect; a new connection (after the old one closed) needs one.
    if (this.subscription && !this.subscription.isClosed()) return;
    const subscription = nc.subscribe(AGENT_EVENTS_SUBJECT);
    this.subscription = subscription;
    this.loopDone = (async () => {
      for await (const message of subscription) await this.apply(message.subject);
    })();
    await nc.flush();
  }

  /**
   * Unsubscribes (locally: no round trip, so it cannot hang while NATS is down) and waits for
   * the notice being applied. Notices not yet applied here are applied by the other replicas.
   */
  async stop(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = null;
    if (subscription && !subscription.isClosed()) {
      try {
        subscription.unsubscribe();
      } catch {
        // The connection is already closed: the subscription went with it.
      }
    }
    await this.loopDone;
  }

  /** Applies one notice; returns the status written, or null when there was nothing to do. */
  async apply(subject: string): Promise<AgentStatus | null> {
    const { db, logger } = this.options;
    const parsed = parseAgentSubject(subject);
    if (!parsed) return null;
    const status = STATUS_FOR_LIFECYCLE[parsed.lifecycle];
    try {
      const change = await applyAgentStatus(db, parsed.agent, status);
      if (!change) {
        logger.debug({ agent: parsed.agent, lifecycle: parsed.lifecycle }, 'lifecycle notice for an unknown agent ignored');
        return null;
      }
      if (change.previousStatus !== change.status) {
        logger.info({ agent: parsed.agent, from: change.previousStatus, to: change.status }, `agent ${parsed.lifecycle}`);
      }
      return status;
    } catch (error) {
      // Lost only if every replica fails; the Warren sync re-reads statuses as a backstop.
      logger.warn({ err: error, agent: parsed.agent, lifecycle: parsed.lifecycle }, 'could not apply agent lifecycle notice');
      return null;
    }
  }
}
