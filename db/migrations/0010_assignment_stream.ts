import { type Kysely, sql } from 'kysely';

/**
 * The assignment stream (GET /api/v1/agents/:id/assignments, src/agents/assignment-hub.ts).
 *
 * Every audit event records the transaction that wrote it (`tx`, its xid8). Event ids come from a
 * sequence, so they are handed out in insertion order, not commit order: an event with a lower id
 * can commit after one with a higher id, and a reader that resumed "after id N" would miss it. A
 * transaction id below the oldest transaction still running (pg_snapshot_xmin) is finished, so
 * readers take only events with tx below that horizon and order them by (tx, id): that order never
 * changes once read, and "after (tx, id)" misses nothing.
 *
 * One NOTIFY per transaction that gives an agent work or takes it away (an assignment batch, a
 * cancel, a timeout, an agent stopping), from a statement trigger: PostgreSQL folds identical
 * notifications of one transaction into one, so a batch of 500 assignments sends one. The payload
 * is empty; it is a hint to read the audit trail, which is what every replica's hub does.
 *
 * Forward-only. The column is added without a default first (no table rewrite); rows written
 * before this migration have no tx and are never replayed by the stream (a cursor pointing at one
 * restarts from the agent's held tasks).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
ALTER TABLE dispatch_task_events ADD COLUMN tx xid8;
ALTER TABLE dispatch_task_events ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
COMMENT ON COLUMN dispatch_task_events.tx IS 'The writing transaction (pg_current_xact_id()). The assignment stream reads events in (tx, id) order and only below pg_snapshot_xmin, so an id committed late is never skipped. NULL for events written before migration 0010.';

-- Whom an event concerns: the agent that got the work or lost it. A cancel records who cancelled
-- in agent_id and the assignee in its payload.
CREATE FUNCTION dispatch_stream_recipient(event text, agent_id text, payload jsonb) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT CASE WHEN event = 'cancelled' THEN payload->>'assignee' ELSE agent_id END $$;
COMMENT ON FUNCTION dispatch_stream_recipient(text, text, jsonb) IS 'The agent an audit event gives work to or takes it from (the assignee in a cancel''s payload, else agent_id); used by dispatch_assignment_feed and its index.';

-- Live reads take a range of tx for every agent with an open stream; replays take one agent.
CREATE INDEX dispatch_task_events_stream_idx ON dispatch_task_events (tx, id)
 WHERE event IN ('assigned', 'cancelled', 'reassigned', 'wake_timeout', 'timeout_retry', 'timeout_exhausted');
COMMENT ON INDEX dispatch_task_events_stream_idx IS 'The events the assignment stream sends, in stream order (live reads of every connected agent).';
CREATE INDEX dispatch_task_events_stream_agent_idx ON dispatch_task_events (dispatch_stream_recipient(event, agent_id, payload), tx, id)
 WHERE event IN ('assigned', 'cancelled', 'reassigned', 'wake_timeout', 'timeout_retry', 'timeout_exhausted');
COMMENT ON INDEX dispatch_task_events_stream_agent_idx IS 'One agent''s stream events in stream order (a reconnect''s replay, a long poll).';

CREATE VIEW dispatch_assignment_feed AS
SELECT e.id, e.tx, e.task_id, e.attempt,
       dispatch_stream_recipient(e.event, e.agent_id, e.payload) AS agent,
       CASE e.event WHEN 'assigned' THEN 'assigned' WHEN 'cancelled' THEN 'cancelled'
                    WHEN 'timeout_retry' THEN 'timeout' WHEN 'timeout_exhausted' THEN 'timeout'
                    ELSE 'reassigned' END AS kind
  FROM dispatch_task_events e
 WHERE e.event IN ('assigned', 'cancelled', 'reassigned', 'wake_timeout', 'timeout_retry', 'timeout_exhausted')
   -- A cancel concerns the assignee only if it still held the attempt (not after a timeout, a
   -- failure with retry or an agent stop already took it away).
   AND (e.event <> 'cancelled' OR NOT EXISTS (
         SELECT 1 FROM dispatch_task_events p
          WHERE p.task_id = e.task_id AND p.attempt = e.attempt AND p.id < e.id
            AND p.event IN ('timeout_retry', 'timeout_exhausted', 'reassigned', 'wake_timeout', 'fail_retry', 'failed', 'completed')));
COMMENT ON VIEW dispatch_assignment_feed IS 'What GET /api/v1/agents/:id/assignments sends: per agent, work given (assigned) and taken away (cancelled; reassigned: the agent stopped or did not wake; timeout), in (tx, id) order.';

CREATE FUNCTION dispatch_notify_assignments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_events
              WHERE event IN ('assigned', 'cancelled', 'reassigned', 'wake_timeout', 'timeout_retry', 'timeout_exhausted')) THEN
    PERFORM pg_notify('dispatch_assignments', '');
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_notify_assignments() IS 'NOTIFY dispatch_assignments (empty payload) when a statement writes an event the assignment stream sends; one per transaction, however many rows.';

CREATE TRIGGER dispatch_task_events_notify_assignments
  AFTER INSERT ON dispatch_task_events REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_notify_assignments();
`,
    )
    .execute(db);
}
