import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { WorkerUtils } from 'graphile-worker';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';

export function newReplicaId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Records this replica as alive, with the worker ids whose job locks it holds. */
export async function heartbeat(db: Db, replicaId: string, workerIds: string[]): Promise<void> {
  await sql`
    INSERT INTO dispatch_replicas (id, worker_ids) VALUES (${replicaId}, ${workerIds}::text[])
    ON CONFLICT (id) DO UPDATE SET worker_ids = excluded.worker_ids, heartbeat_at = now()`.execute(db);
}

export async function forgetReplica(db: Db, replicaId: string): Promise<void> {
  await sql`DELETE FROM dispatch_replicas WHERE id = ${replicaId}`.execute(db);
}

/**
 * Workers holding job locks that no live replica owns: those of replicas silent longer than
 * `deadAfterMs`, and of processes that never registered (locked longer than that, owner unknown).
 */
export async function findDeadWorkers(db: Db, deadAfterMs: number): Promise<{ workerIds: string[]; replicaIds: string[] }> {
  const { rows } = await sql<{ locked_by: string }>`
    SELECT DISTINCT j.locked_by
      FROM graphile_worker._private_jobs j
     WHERE j.locked_by IS NOT NULL
       AND j.locked_at < now() - make_interval(secs => ${deadAfterMs / 1000})
       AND NOT EXISTS (
         SELECT 1 FROM dispatch_replicas r
          WHERE j.locked_by = ANY (r.worker_ids)
            AND r.heartbeat_at >= now() - make_interval(secs => ${deadAfterMs / 1000}))`.execute(db);
  const dead = await sql<{ id: string }>`
    SELECT id FROM dispatch_replicas WHERE heartbeat_at < now() - make_interval(secs => ${deadAfterMs / 1000})`.execute(db);
  return { workerIds: rows.map((r) => r.locked_by), replicaIds: dead.rows.map((r) => r.id) };
}

/** Releases the job locks of dead replicas so their jobs run again elsewhere, within seconds. */
export async function releaseDeadReplicaLocks(db: Db, utils: WorkerUtils, deadAfterMs: number, logger: Logger): Promise<number> {
  const { workerIds, replicaIds } = await findDeadWorkers(db, deadAfterMs);
  if (workerIds.length > 0) {
    await utils.forceUnlockWorkers(workerIds);
    logger.warn({ workerIds }, 'released job locks of dead replicas');
  }
  if (replicaIds.length > 0) {
    await sql`DELETE FROM dispatch_replicas WHERE id = ANY (${replicaIds}::text[])
                AND heartbeat_at < now() - make_interval(secs => ${deadAfterMs / 1000})`.execute(db);
  }
  return workerIds.length;
}
