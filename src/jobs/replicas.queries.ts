import { sql } from 'kysely';
import type { Db } from '../db/database.js';

/**
 * Records this replica as alive, with the worker ids whose job locks it holds; returns how many
 * replicas (this one included) beat within `deadAfterMs`.
 */
export async function heartbeat(db: Db, replicaId: string, workerIds: string[], deadAfterMs: number): Promise<number> {
  const { rows } = await sql<{ live: number }>`
    WITH beat AS (
      INSERT INTO dispatch_replicas (id, worker_ids) VALUES (${replicaId}, ${workerIds}::text[])
      ON CONFLICT (id) DO UPDATE SET worker_ids = excluded.worker_ids, heartbeat_at = now()
    )
    -- The statement's snapshot does not see its own insert: count this replica apart.
    SELECT 1 + count(*)::int AS live FROM dispatch_replicas
     WHERE id <> ${replicaId} AND heartbeat_at >= now() - make_interval(secs => ${deadAfterMs / 1000})`.execute(db);
  return rows[0]?.live ?? 1;
}

export async function forgetReplica(db: Db, replicaId: string): Promise<void> {
  await sql`DELETE FROM dispatch_replicas WHERE id = ${replicaId}`.execute(db);
}

/** Replicas silent longer than `deadAfterMs`. */
export async function findSilentReplicas(db: Db, deadAfterMs: number): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    SELECT id FROM dispatch_replicas WHERE heartbeat_at < now() - make_interval(secs => ${deadAfterMs / 1000})`.execute(db);
  return rows.map((r) => r.id);
}

/** Forgets those of `replicaIds` still silent (one that beat meanwhile stays). */
export async function forgetSilentReplicas(db: Db, replicaIds: string[], deadAfterMs: number): Promise<void> {
  await sql`DELETE FROM dispatch_replicas WHERE id = ANY (${replicaIds}::text[])
              AND heartbeat_at < now() - make_interval(secs => ${deadAfterMs / 1000})`.execute(db);
}
