import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { discardStaleOwedEvents } from '../../src/events/outbox.queries.js';
import { useTestDatabase } from '../helpers/database.js';

/*
 * Without NATS, a replica drops events owed to it for over a day (OwedEventsTrimmer). A day of
 * events is millions of rows: the trim must read the head of the outbox, not all of it.
 */

const database = useTestDatabase();
const db = () => database().handle.db;
const DAY_MS = 24 * 3_600_000;

/** How many outbox rows `run` read, run on one connection (the statistics are the backend's). */
async function outboxRowsRead(run: (conn: Db) => Promise<unknown>): Promise<number> {
  return await db()
    .connection()
    .execute(async (conn) => {
      // The backend's counters of earlier statements may not be flushed yet: count the difference, in one transaction.
      await sql`BEGIN`.execute(conn);
      try {
        const read = async () =>
          (
            await sql<{ n: number }>`
              SELECT (coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0))::int AS n
                FROM pg_stat_xact_user_tables WHERE relid = 'dispatch_event_outbox'::regclass`.execute(conn)
          ).rows[0]!.n;
        const before = await read();
        await run(conn);
        return (await read()) - before;
      } finally {
        await sql`COMMIT`.execute(conn);
      }
    });
}

describe('trimming the outbox without NATS', () => {
  it('drops the events owed for over a day and reads only the head of the outbox, however much is owed', async () => {
    // 50 events queued two days ago, then 20,000 queued now.
    await sql`INSERT INTO dispatch_event_outbox (id, created_at)
              SELECT n, now() - interval '2 days' FROM generate_series(1, 50) AS n`.execute(db());
    await sql`INSERT INTO dispatch_event_outbox (id, created_at)
              SELECT n, now() FROM generate_series(51, 20_050) AS n`.execute(db());
    await sql`ANALYZE dispatch_event_outbox`.execute(db());

    let dropped = 0;
    await outboxRowsRead(async (conn) => {
      dropped = await discardStaleOwedEvents(conn, DAY_MS, 1_000);
    });
    expect(dropped).toBe(50);
    const { rows } = await sql<{ n: number; first: string }>`SELECT count(*)::int AS n, min(id)::text AS first FROM dispatch_event_outbox`.execute(db());
    expect(rows[0]).toEqual({ n: 20_000, first: '51' });

    // Nothing stale left: the check must not walk the 20,000 young rows looking for one.
    const readWhenFresh = await outboxRowsRead(async (conn) => {
      expect(await discardStaleOwedEvents(conn, DAY_MS, 1_000)).toBe(0);
    });
    // The oldest 1,000, and the two the count itself costs; the whole outbox without the bound.
    expect(readWhenFresh, 'outbox rows read by a trim with nothing stale').toBeLessThanOrEqual(1_010);
  });
});
