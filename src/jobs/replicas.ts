import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { WorkerUtils } from 'graphile-worker';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { findOrphanedLockHolders } from './graphile-worker.queries.js';
import { findSilentReplicas, forgetSilentReplicas } from './replicas.queries.js';

export function newReplicaId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * Releases the job locks of dead replicas so their jobs run again elsewhere, within seconds:
 * those of replicas silent longer than `deadAfterMs`, and of processes that never registered
 * (locked longer than that, owner unknown). Then forgets the silent replicas.
 */
export async function releaseDeadReplicaLocks(db: Db, utils: WorkerUtils, deadAfterMs: number, logger: Logger): Promise<number> {
  const workerIds = await findOrphanedLockHolders(db, deadAfterMs);
  const replicaIds = await findSilentReplicas(db, deadAfterMs);
  if (workerIds.length > 0) {
    await utils.forceUnlockWorkers(workerIds);
    logger.warn({ workerIds }, 'released job locks of dead replicas');
  }
  if (replicaIds.length > 0) await forgetSilentReplicas(db, replicaIds, deadAfterMs);
  return workerIds.length;
}
