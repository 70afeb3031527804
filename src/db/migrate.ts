import { Migrator, sql } from 'kysely';
import { runMigrations as runWorkerMigrations, type Logger as WorkerLogger } from 'graphile-worker';
import type pg from 'pg';
import { migrationProvider } from '../../db/migrations.js';
import { ADVISORY_LOCK } from './contract.js';
import type { Db } from './database.js';

export function createMigrator(db: Db): Migrator {
  return new Migrator({
    db,
    provider: migrationProvider,
  });
}

export interface MigrationReport {
  applied: string[];
}

/**
 * Brings graphile-worker's schema and ours up to date. Replicas starting together serialise on
 * one advisory lock: the first migrates, the others wait and then find nothing to do.
 */
export async function migrateToLatest(db: Db, pool: pg.Pool, workerLogger: WorkerLogger): Promise<MigrationReport> {
  return await db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(${ADVISORY_LOCK.migration.toString()}::bigint)`.execute(conn);
    try {
      await runWorkerMigrations({ pgPool: pool, logger: workerLogger });
      const { error, results } = await createMigrator(db).migrateToLatest();
      if (error) throw error instanceof Error ? error : new Error(String(error));
      return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
    } finally {
      await sql`SELECT pg_advisory_unlock(${ADVISORY_LOCK.migration.toString()}::bigint)`.execute(conn);
    }
  });
}

/** True when every migration in the folder has been applied (readiness check). */
export async function isMigrated(db: Db): Promise<boolean> {
  const migrations = await createMigrator(db).getMigrations();
  return migrations.every((m) => m.executedAt !== undefined);
}
