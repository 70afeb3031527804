import { BackgroundService } from '../background/service.js';
import { JOB } from '../db/contract.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { JobHandler } from '../jobs/runner.js';
import { Assigner, type AssignerOptions, type AssignerPools } from './assigner.js';
import { QueueMaintenance, type QueueMaintenanceOptions } from './queue-maintenance.js';

export interface AssignmentServiceOptions extends AssignerOptions {
  tickIntervalMs: number;
  /** Vacuuming of the queue's hot tables (see queue-maintenance.ts); off when absent. */
  maintenance?: QueueMaintenanceOptions;
}

/**
 * Assignment as this replica runs it: a drain whenever the database says work appeared (NOTIFY
 * dispatch_assign, heard by the replica's LISTEN connection and passed to wake()), the
 * `assignment:run` job (passes scheduled at a time, a stopping replica's hand-over), and a periodic
 * tick (this service's pass) that is only the safety net for a notification nobody heard.
 */
export class AssignmentService extends BackgroundService<void> {
  readonly assigner: Assigner;
  readonly maintenance: QueueMaintenance;
  private handingOver = false;

  constructor(
    db: Db,
    pools: AssignerPools,
    options: AssignmentServiceOptions,
    logger: Logger,
    metrics: Metrics,
  ) {
    super('assignment tick', { intervalMs: options.tickIntervalMs, runAtStart: true }, logger);
    this.assigner = new Assigner(db, pools, options, logger, metrics);
    this.maintenance = new QueueMaintenance(pools.direct, options.maintenance ?? { intervalMs: 0, deadTuples: 0 }, logger);
  }

  jobs(): Record<string, JobHandler> {
    return {
      [JOB.assignmentRun]: async () => {
        // A drain running here takes the request and the job returns: waiting for a drain that
        // stays active under steady work would hold a worker slot as long.
        if (this.assigner.draining) this.wake();
        else await this.pass();
      },
    };
  }

  override start(): void {
    super.start();
    this.maintenance.start();
  }

  /**
   * Work appeared (or notifications may have been missed): drain now. Never throws; a failed
   * drain is logged and the tick comes back.
   */
  wake(): void {
    if (this.handingOver) return;
    this.pass().catch((error: unknown) => this.logger.warn({ err: error }, 'assignment pass failed; the tick will retry'));
  }

  /** One tick: a pass of this replica's own, and tasks no agent can take recorded. */
  async runOnce(): Promise<void> {
    await this.pass();
    await this.assigner.recordUnmatched();
  }

  /** Resolves once a pass that began after this call has ended (see Assigner.drain). */
  pass(): Promise<void> {
    return this.assigner.drain(() => this.handingOver);
  }

  /**
   * Makes a running drain hand over after its current batch and waits for it, and stops the tick
   * and the vacuums.
   */
  override async stop(): Promise<void> {
    this.handingOver = true;
    await Promise.all([super.stop(), this.maintenance.stop(), this.assigner.whenIdle()]);
  }
}
