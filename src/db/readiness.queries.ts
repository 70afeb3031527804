import { sql } from 'kysely';
import type { Db } from './database.js';
import { isMigrated } from './migrate.js';

/** /ready: the database answers and every migration is applied. */
export async function isDatabaseReady(db: Db): Promise<boolean> {
  await sql`SELECT 1`.execute(db);
  return await isMigrated(db);
}
