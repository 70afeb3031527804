import { type Kysely, sql } from 'kysely';

/**
 * The transactional outbox for NATS, and the one-replica schedule for periodic publications.
 *
 * Every event row is already written in the same statement as its state change. A statement
 * trigger adds the new rows' ids to dispatch_event_outbox in that same transaction, so a commit
 * makes the event both visible and owed to NATS; the publisher deletes an id once JetStream has
 * acknowledged the message. A separate narrow table rather than a published_at column on the
 * events: marking a column that a partial index depends on rules out HOT updates, so each publish
 * would rewrite the whole (possibly large) event row and add an entry to each of its three
 * indexes, where here it is one small insert and one delete. dispatch_task_events stays
 * append-only.
 *
 * Events recorded before this migration are history, not owed: they are not queued.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE TABLE dispatch_event_outbox (
  id          bigint PRIMARY KEY REFERENCES dispatch_task_events (id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now()
) WITH (
  -- A queue table: rows live for milliseconds. Vacuum it often so the publisher's index scan
  -- does not wade through dead entries after a burst.
  autovacuum_vacuum_scale_factor = 0.0,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_cost_delay = 0
);
COMMENT ON TABLE dispatch_event_outbox IS 'Task events committed but not yet acknowledged by JetStream; the publisher deletes each id after the acknowledgement.';
COMMENT ON COLUMN dispatch_event_outbox.id IS 'dispatch_task_events.id of the owed event; publication follows this order.';
COMMENT ON COLUMN dispatch_event_outbox.created_at IS 'When the event was queued; the oldest gives the publication lag.';

CREATE FUNCTION dispatch_queue_events_for_publication() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO dispatch_event_outbox (id) SELECT id FROM new_rows;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_queue_events_for_publication() IS 'Statement trigger: every new task event is owed to NATS, in the same transaction as the event.';

CREATE TRIGGER dispatch_task_events_outbox AFTER INSERT ON dispatch_task_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dispatch_queue_events_for_publication();

CREATE TABLE dispatch_periodic_publications (
  name  text PRIMARY KEY,
  slot  bigint NOT NULL
);
COMMENT ON TABLE dispatch_periodic_publications IS 'Last interval slot in which a periodic message (swarm.dispatch.stats) was published; a replica publishes only if it advances the slot, so one replica publishes per interval.';
COMMENT ON COLUMN dispatch_periodic_publications.name IS 'Which periodic message.';
COMMENT ON COLUMN dispatch_periodic_publications.slot IS 'floor(epoch milliseconds / interval) of the last publication.';
`,
    )
    .execute(db);
}
