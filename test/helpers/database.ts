import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';

export function databaseUrl(database: string): string {
  const parsed = new URL(inject('serverUrl'));
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function adminQuery(sqlText: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('serverUrl') });
  await client.connect();
  try {
    await client.query(sqlText);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  /** A small pool for the test's own queries and assertions. */
  handle: DatabaseHandle;
  drop(): Promise<void>;
}

/** A fresh database for one test file: migrated (from the template) unless `empty`. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `dispatch_t_${randomBytes(6).toString('hex')}`;
  await adminQuery(options.empty ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${inject('templateDatabase')}`);
  const url = databaseUrl(name);
  const handle = openDatabase(url, 4, 'dispatch-test');
  return {
    name,
    url,
    handle,
    async drop() {
      await handle.close();
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
