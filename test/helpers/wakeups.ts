import { sql } from 'kysely';
import pg from 'pg';
import { NOTIFY_CHANNEL } from '../../src/db/contract.js';
import type { Db } from '../../src/db/database.js';
import { waitFor } from './wait.js';

/**
 * The payloads of NOTIFY dispatch_assign (the assigners' wake-up, migration 0019) sent while
 * `write` ran. Notifications arrive in commit order, so once a marker sent after `write` is
 * heard, anything `write` sent has been too.
 */
export async function assignWakeupsDuring(url: string, db: Db, write: () => Promise<unknown>): Promise<string[]> {
  const listener = new pg.Client({ connectionString: url });
  await listener.connect();
  try {
    const heard: string[] = [];
    listener.on('notification', (n) => {
      if (n.channel === NOTIFY_CHANNEL.assign) heard.push(n.payload ?? '');
    });
    await listener.query(`LISTEN ${NOTIFY_CHANNEL.assign}`);
    await write();
    await sql`SELECT pg_notify(${NOTIFY_CHANNEL.assign}, 'marker')`.execute(db);
    await waitFor(() => heard.includes('marker'), { what: 'the marker notification' });
    return heard.slice(0, heard.indexOf('marker'));
  } finally {
    await listener.end();
  }
}
