import { randomBytes } from 'node:crypto';
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

/** A fresh, migrated database for one scenario; `drop()` removes it. */
export async function createBenchDatabase(label: string, poolSize = 8): Promise<BenchDatabase> {
  const name = `dispatch_bench_${label}_${randomBytes(3).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const database = scratchDatabase(benchServerUrl(), name, poolSize, 'dispatch-bench');
  try {
    await migrateToLatest(database.handle.db, database.handle.pool, workerLogger(createLogger({ level: 'warn' })));
  } catch (error) {
    await database.drop();
    throw error;
  }
  return database;
}

/** Runs `fn` on a fresh database and always drops it afterwards. */
export async function withBenchDatabase<T>(label: string, fn: (database: BenchDatabase) => Promise<T>): Promise<T> {
  const database = await createBenchDatabase(label);
  try {
    return await fn(database);
  } finally {
    await database.drop();
  }
}
