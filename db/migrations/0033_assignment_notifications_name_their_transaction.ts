import { type Kysely, sql } from 'kysely';

/**
 * NOTIFY dispatch_assignments carries the writing transaction's id (pg_current_xact_id(), the tx
 * its events are stored with) instead of an empty payload.
 *
 * A replica's assignment hub reads the audit trail on every such notification, from its horizon
 * on (src/agents/assignment-hub.ts). The replica whose assigner wrote the events reads them as
 * soon as its own COMMIT returns, without waiting for the notification to travel back through
 * the server to its LISTEN session; the notification then names a transaction below the horizon
 * that read reached, and is dropped rather than read a second time. Notifications of one
 * transaction still fold into one (same channel, same payload). A replica of the previous
 * version ignores the payload; this version reads on an empty one (from a server not yet
 * migrated) as before. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE OR REPLACE FUNCTION dispatch_notify_assignments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_events
              WHERE event IN ('assigned', 'cancelled', 'reassigned', 'wake_timeout', 'timeout_retry', 'timeout_exhausted')) THEN
    PERFORM pg_notify('dispatch_assignments', pg_current_xact_id()::text);
  END IF;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION dispatch_notify_assignments() IS 'NOTIFY dispatch_assignments with the writing transaction''s id as payload (the tx of its events) when a statement writes an event the assignment stream sends; one per transaction, however many rows. A replica that has read past that transaction drops it (migration 0033).';
`,
    )
    .execute(db);
}
