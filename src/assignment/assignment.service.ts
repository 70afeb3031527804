import type pg from 'pg';
import { BackgroundService } from '../background/service.js';
import { JOB } from '../db/contract.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { JobHandler } from '../jobs/runner.js';
import { Assigner, type AssignerOptions } from './assigner.js';
import { requestAssignment } from './assignment.queries.js';
import { QueueMaintenance, type QueueMaintenanceOptions } from './queue-maintenance.js';

export interface AssignmentServiceOptions extends AssignerOptions {
  tickIntervalMs: number;
  /** Vacuuming of the queue's hot tables (see queue-maintenance.ts); off when absent. */
  maintenance?: QueueMaintenanceOptions;
}

/**
 * Assignment as this replica runs it: the `assignment:run` job (enqueued by the database when
 * work appears) and a periodic tick (this service's pass) that is only the safety net.
 */
export class AssignmentService extends BackgroundService<void> {
  readonly assigner: Assigner;
  readonly maintenance: QueueMaintenance;
  private handingOver = false;

  constructor(
    private readonly db: Db,
    pool: pg.Pool,
    options: AssignmentServiceOptions,
    logger: Logger,
    metrics: Metrics,
  ) {
    super('assignment tick', { intervalMs: options.tickIntervalMs, runAtStart: true }, logger);
    this.assigner = new Assigner(db, pool, options, logger, metrics);
    this.maintenance = new QueueMaintenance(pool, options.maintenance ?? { intervalMs: 0, deadTuples: 0 }, logger);
  }

  jobs(): Record<string, JobHandler> {
    return {
      [JOB.assignmentRun]: async () => {
        await this.assigner.drain(() => this.handingOver);
      },
    };
  }

  override start(): void {
    super.start();
    this.maintenance.start();
  }

  /** One tick: ask for a pass, and record tasks no agent can take. */
  async runOnce(): Promise<void> {
    await this.requestPass();
    await this.assigner.recordUnmatched();
  }

  /** Asks for an assignment pass through the same path the triggers use. */
  async requestPass(): Promise<void> {
    try {
      await requestAssignment(this.db);
    } catch (error) {
      this.logger.warn({ err: error }, 'assignment tick failed; retrying next tick');
    }
  }

  /** Makes a running drain hand over after its current batch, and stops the tick and the vacuums. */
  override async stop(): Promise<void> {
    this.handingOver = true;
    await Promise.all([super.stop(), this.maintenance.stop()]);
  }
}
