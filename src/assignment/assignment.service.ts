import { sql } from 'kysely';
import type pg from 'pg';
import { JOB } from '../db/contract.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { JobHandler } from '../jobs/runner.js';
import { Assigner, type AssignerOptions } from './assigner.js';
import { QueueMaintenance, type QueueMaintenanceOptions } from './queue-maintenance.js';

export interface AssignmentServiceOptions extends AssignerOptions {
  tickIntervalMs: number;
  /** Vacuuming of the queue's hot tables (see queue-maintenance.ts); off when absent. */
  maintenance?: QueueMaintenanceOptions;
}

/**
 * Assignment as this replica runs it: the `assignment:run` job (enqueued by the database when
 * work appears) and a periodic tick that is only the safety net.
 */
export class AssignmentService {
  readonly assigner: Assigner;
  readonly maintenance: QueueMaintenance;
  private tick: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    private readonly db: Db,
    pool: pg.Pool,
    private readonly options: AssignmentServiceOptions,
    private readonly logger: Logger,
    metrics: Metrics,
  ) {
    this.assigner = new Assigner(db, pool, options, logger, metrics);
    this.maintenance = new QueueMaintenance(pool, options.maintenance ?? { intervalMs: 0, deadTuples: 0 }, logger);
  }

  jobs(): Record<string, JobHandler> {
    return {
      [JOB.assignmentRun]: async () => {
        await this.assigner.drain(() => this.stopping);
      },
    };
  }

  start(): void {
    this.tick = setInterval(() => void this.onTick(), this.options.tickIntervalMs);
    this.tick.unref();
    void this.onTick();
    this.maintenance.start();
  }

  private async onTick(): Promise<void> {
    await this.requestPass();
    try {
      await this.assigner.recordUnmatched();
    } catch (error) {
      this.logger.warn({ err: error }, 'recording unmatched tasks failed; retrying next tick');
    }
  }

  /** Asks for an assignment pass through the same path the triggers use. */
  async requestPass(): Promise<void> {
    try {
      await sql`SELECT dispatch_request_assignment()`.execute(this.db);
    } catch (error) {
      this.logger.warn({ err: error }, 'assignment tick failed; retrying next tick');
    }
  }

  /** Stops the tick and makes a running drain hand over after its current batch. */
  beginShutdown(): void {
    this.stopping = true;
    if (this.tick) clearInterval(this.tick);
    // A vacuum under way finishes on its connection; closing the pool waits for it.
    void this.maintenance.stop();
  }
}
