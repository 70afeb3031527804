import { makeWorkerUtils, type WorkerUtils } from 'graphile-worker';
import type pg from 'pg';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { workerLogger } from '../observability/logger.js';
import { forgetReplica, heartbeat, releaseDeadReplicaLocks } from './replicas.js';

/**
 * graphile-worker leaves a dead process's jobs locked for 4 hours. Each replica heartbeats, and
 * on every beat also releases the locks of replicas that stopped beating: a SIGKILLed replica's
 * jobs run again elsewhere within `deadAfterMs` plus one interval.
 */
export class ReplicaMonitor {
  private timer: NodeJS.Timeout | undefined;
  private utils: WorkerUtils | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly pool: pg.Pool,
    readonly replicaId: string,
    private readonly workerIds: () => string[],
    private readonly options: { intervalMs: number; deadAfterMs: number },
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.utils = await makeWorkerUtils({ pgPool: this.pool, logger: workerLogger(this.logger) });
    await this.beat();
    this.timer = setInterval(() => {
      this.running = this.beat();
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** One heartbeat and one sweep for dead replicas; errors are logged, never thrown. */
  async beat(): Promise<void> {
    try {
      await heartbeat(this.db, this.replicaId, this.workerIds());
      if (this.utils) await releaseDeadReplicaLocks(this.db, this.utils, this.options.deadAfterMs, this.logger);
    } catch (error) {
      this.logger.warn({ err: error }, 'replica heartbeat failed');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await forgetReplica(this.db, this.replicaId).catch(() => {});
    await this.utils?.release();
  }
}
