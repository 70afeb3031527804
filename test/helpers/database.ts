import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, inject } from 'vitest';
import { runOnServer, scratchDatabase, withDatabase, type ScratchDatabase } from './scratch-database.js';

export const databaseUrl = (database: string) => withDatabase(inject('serverUrl'), database);

export type TestDatabase = ScratchDatabase;

/** A fresh database for one test file: migrated (from the template) unless `empty`. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `dispatch_t_${randomBytes(6).toString('hex')}`;
  const template = options.empty ? '' : ` TEMPLATE ${inject('templateDatabase')}`;
  await runOnServer(inject('serverUrl'), `CREATE DATABASE ${name}${template}`);
  return scratchDatabase(inject('serverUrl'), name, 4, 'dispatch-test');
}

/** A database of the calling test file's own, created before its tests and dropped after them. */
export function useTestDatabase(options: { empty?: boolean } = {}): () => TestDatabase {
  let database: TestDatabase | undefined;
  beforeAll(async () => {
    database = await createTestDatabase(options);
  });
  afterAll(async () => {
    await database?.drop();
  });
  return () => database!;
}
