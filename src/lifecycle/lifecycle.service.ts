import { z } from 'zod';
import { BackgroundService } from '../background/service.js';
import { JOB } from '../db/contract.js';
import type { Db } from '../db/database.js';
import type { JobHandler } from '../jobs/runner.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import * as q from './lifecycle.queries.js';

export interface LifecycleOptions {
  sweepIntervalMs: number;
  /** Standalone agents silent this long count as stopped. */
  agentHeartbeatTimeoutMs: number;
  wakeTimeoutMs: number;
  wakeCooldownMs: number;
}

/** Asks the agent platform (Warren) to wake an agent; absent in standalone mode. */
export type WakeAgent = (agent: string) => Promise<void>;

const agentPayload = z.object({ agent: z.string().min(1) });

/**
 * What happens to agents and waiting tasks after placement: the sweep (silent standalone agents,
 * waiting-too-long alarms) and waking sleeping agents. Attempts past their deadline are timed out
 * by the due timer (due-timer.ts).
 */
export class LifecycleService extends BackgroundService<void> {
  constructor(
    private readonly db: Db,
    private readonly options: LifecycleOptions,
    private readonly wakeAgent: WakeAgent | null,
    logger: Logger,
    private readonly metrics: Metrics,
  ) {
    super('lifecycle sweep', { intervalMs: options.sweepIntervalMs }, logger);
  }

  jobs(): Record<string, JobHandler> {
    return {
      [JOB.wakeAgent]: async (payload) => {
        await this.wake(agentPayload.parse(payload).agent);
      },
      [JOB.wakeCheck]: async (payload) => {
        await this.checkWake(agentPayload.parse(payload).agent);
      },
    };
  }

  /** Called after an assignment batch commits, with the sleeping agents that won tasks. */
  async requestWakes(agents: string[]): Promise<void> {
    await q.enqueueWakes(this.db, agents);
  }

  /** Wakes through Warren without blocking anyone, and checks back after wake_timeout_ms. */
  async wake(agent: string): Promise<void> {
    if (!(await q.markWakeRequested(this.db, agent))) return;
    await q.scheduleWakeCheck(this.db, agent, this.options.wakeTimeoutMs);
    if (this.wakeAgent) {
      await this.wakeAgent(agent);
      this.logger.info({ agent }, 'woke sleeping agent for assigned work');
    }
  }

  async checkWake(agent: string): Promise<void> {
    const returned = await q.abandonWake(this.db, agent, this.options.wakeCooldownMs);
    if (returned > 0) {
      this.logger.warn({ agent, tasks: returned }, 'agent did not wake in time; its reserved tasks went back to pending');
      this.metrics.taskTransitions.inc({ event: 'wake_timeout' }, returned);
    }
  }

  /** One sweep: expire silent agents, raise waiting alarms. */
  async runOnce(): Promise<void> {
    const expired = await q.expireSilentAgents(this.db, this.options.agentHeartbeatTimeoutMs);
    if (expired.length > 0) this.logger.warn({ agents: expired }, 'standalone agents stopped heartbeating; their tasks were returned');
    const alarms = await q.raiseStartAlarms(this.db, 500);
    if (alarms > 0) {
      this.metrics.waitingTooLong.inc(alarms);
      this.logger.warn({ tasks: alarms }, 'tasks waited pending past their start timeout');
    }
  }
}
