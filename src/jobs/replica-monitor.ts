import { makeWorkerUtils, type WorkerUtils } from 'graphile-worker';
import type pg from 'pg';
import { BackgroundService } from '../background/service.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { workerLogger } from '../observability/logger.js';
import { releaseDeadReplicaLocks } from './replicas.js';
import { forgetReplica, heartbeat } from './replicas.queries.js';

/**
 * graphile-worker leaves a dead process's jobs locked for 4 hours. Each replica heartbeats, and
 * on every beat also releases the locks of replicas that stopped beating: a SIGKILLed replica's
 * jobs run again elsewhere within `deadAfterMs` plus one interval.
 */
export class ReplicaMonitor extends BackgroundService<void> {
  private utils: WorkerUtils | undefined;
  /** Replicas that beat within dead_after_ms, this one included, as of the last beat. */
  liveReplicas = 1;

  constructor(
    private readonly db: Db,
    private readonly pool: pg.Pool,
    readonly replicaId: string,
    private readonly workerIds: () => string[],
    private readonly options: { intervalMs: number; deadAfterMs: number; onCount?: (liveReplicas: number) => void },
    logger: Logger,
  ) {
    super('replica heartbeat', { intervalMs: options.intervalMs }, logger);
  }

  /** The first beat is written before start resolves, so the replica is known at once. */
  override async start(): Promise<void> {
    this.utils = await makeWorkerUtils({ pgPool: this.pool, logger: workerLogger(this.logger) });
    await this.runLogged();
    super.start();
  }

  /** One heartbeat and one sweep for dead replicas. */
  async runOnce(): Promise<void> {
    this.liveReplicas = await heartbeat(this.db, this.replicaId, this.workerIds(), this.options.deadAfterMs);
    this.options.onCount?.(this.liveReplicas);
    if (this.utils) await releaseDeadReplicaLocks(this.db, this.utils, this.options.deadAfterMs, this.logger);
  }

  override async stop(): Promise<void> {
    await super.stop();
    await forgetReplica(this.db, this.replicaId).catch(() => {});
    await this.utils?.release();
  }
}
