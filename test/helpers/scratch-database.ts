import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';

/**
 * Throwaway databases on a PostgreSQL server, for the tests and the benchmarks alike (no vitest
 * here, so both can import it).
 */

/** The URL of `database` on the server `serverUrl` points at. */
export function withDatabase(serverUrl: string, database: string): string {
  const parsed = new URL(serverUrl);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Runs one statement on the server's maintenance database over a connection of its own: CREATE
 * and DROP DATABASE cannot run inside a transaction nor on the database they drop.
 */
export async function runOnServer(serverUrl: string, sqlText: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sqlText);
  } finally {
    await client.end();
  }
}

export interface ScratchDatabase {
  name: string;
  url: string;
  /** A pool of the caller's own; Dispatch processes under test open theirs. */
  handle: DatabaseHandle;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/** Opens a pool on `name`, a database just created on the server, and knows how to drop it. */
export function scratchDatabase(serverUrl: string, name: string, poolSize: number, applicationName: string): ScratchDatabase {
  const url = withDatabase(serverUrl, name);
  const handle = openDatabase(url, poolSize, applicationName);
  return {
    name,
    url,
    handle,
    async drop() {
      await handle.close();
      await runOnServer(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
