import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
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

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Runs one statement (CREATE/DROP DATABASE) on the benchmark server's maintenance database. */
export async function admin(sqlText: string): Promise<void> {
  const client = new pg.Client({ connectionString: benchServerUrl() });
  await client.connect();
  try {
    await client.query(sqlText);
  } finally {
    await client.end();
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  /** The benchmark's own pool (loads, measurements); replicas open their own. */
  handle: DatabaseHandle;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one scenario; `drop()` removes it. */
export async function createBenchDatabase(label: string, poolSize = 8): Promise<BenchDatabase> {
  const name = `dispatch_bench_${label}_${randomBytes(3).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = withDatabase(benchServerUrl(), name);
  const handle = openDatabase(url, poolSize, 'dispatch-bench');
  try {
    await migrateToLatest(handle.db, handle.pool, workerLogger(createLogger({ level: 'warn' })));
  } catch (error) {
    await handle.close();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    throw error;
  }
  return {
    name,
    url,
    handle,
    async drop() {
      await handle.close();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
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
