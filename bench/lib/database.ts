import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { freePort } from '../../test/helpers/replica-process.js';
import { runOnServer, scratchDatabase, type ScratchDatabase } from '../../test/helpers/scratch-database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createLogger, workerLogger } from '../../src/observability/logger.js';

/** The server the benchmark runs on; only loopback addresses are accepted. */
export function benchServerUrl(): string {
  const url = process.env.DISPATCH_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    throw new Error(`DISPATCH_BENCH_DATABASE_URL must point at this machine (127.0.0.1), not ${host}`);
  }
  return url;
}

export { withDatabase } from '../../test/helpers/scratch-database.js';

/** Runs one statement (CREATE/DROP DATABASE) on the benchmark server's maintenance database. */
export const admin = (sqlText: string) => runOnServer(benchServerUrl(), sqlText);

/** A scenario's database; its pool is the benchmark's own (loads, measurements), replicas open theirs. */
export type BenchDatabase = ScratchDatabase;

/** A fresh database for one scenario, migrated unless `migrate` is false; `drop()` removes it. */
export async function createBenchDatabase(label: string, poolSize = 8, migrate = true): Promise<BenchDatabase> {
  const name = `dispatch_bench_${label}_${randomBytes(3).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const database = scratchDatabase(benchServerUrl(), name, poolSize, 'dispatch-bench');
  if (!migrate) return database;
  try {
    await migrateToLatest(database.handle.db, database.handle.pool, workerLogger(createLogger({ level: 'warn' })));
  } catch (error) {
    await database.drop();
    throw error;
  }
  return database;
}

/** Runs `fn` on a fresh database and always drops it afterwards. */
export async function withBenchDatabase<T>(label: string, fn: (database: BenchDatabase) => Promise<T>, migrate = true): Promise<T> {
  const database = await createBenchDatabase(label, 8, migrate);
  try {
    return await fn(database);
  } finally {
    await database.drop();
  }
}

/**
 * A scratch PostgreSQL of its own with track_commit_timestamp on (commit times are otherwise
 * invisible, and the setting needs a server restart), migrated; destroyed afterwards. With
 * `statementStats` it also loads pg_stat_statements (bench/lib/statement-stats.ts), which needs a
 * restart too; the scenarios that do not read it do not pay for it.
 */
export async function withCommitStampedServer<T>(
  label: string,
  fn: (url: string, database: DatabaseHandle, dataDir: string) => Promise<T>,
  { statementStats = false }: { statementStats?: boolean } = {},
): Promise<T> {
  const logger = createLogger({ level: 'warn' });
  const server = await startEmbeddedPostgres({
    baseDir: mkdtempSync(join(tmpdir(), `dispatch-bench-${label}-`)),
    port: await freePort(),
    logger,
    settings: {
      track_commit_timestamp: 'on',
      // Planning too: a statement planned anew on every call pays it beside its run (docs/BENCHMARKS.md, session 29).
      ...(statementStats && { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track_planning': 'on' }),
    },
  });
  const database = openDatabase(server.url, 4, 'dispatch-bench');
  try {
    await migrateToLatest(database.db, database.pool, workerLogger(logger));
    if (statementStats) await database.pool.query('CREATE EXTENSION pg_stat_statements');
    return await fn(server.url, database, server.dataDir);
  } finally {
    await database.close();
    await server.destroy();
  }
}
