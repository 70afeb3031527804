import { type Kysely, sql } from 'kysely';

/**
 * Scopes as something an operator steers: pause a scope (it still accepts tasks but none is
 * assigned), or limit it (`max_running` tasks assigned or running at once across the swarm,
 * `max_starts_per_minute` assignments in any 60 s). The assigner reads dispatch_scopes in its
 * claim transaction and locks the rows of limited scopes there (src/assignment/scope-gate.ts;
 * docs/ARCHITECTURE.md, "How scope limits stay exact"), so every replica obeys a change at once.
 *
 * Scope changes are audited in dispatch_scope_events and published to NATS through the same
 * outbox as task events. Their ids come from the task events' sequence, so the outbox keeps
 * one publication order and an audit replaying both tables in id order sees each limit change
 * exactly where it fell between assignments. The outbox's foreign key to dispatch_task_events
 * goes: an owed id may now name either table. Retention already keeps every task with an owed
 * event; an owed id whose event a DBA deleted is dropped by the publisher.
 *
 * Forward-only; only new, empty tables besides the dropped constraint.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE TABLE dispatch_scopes (
  scope                  text PRIMARY KEY,
  paused                 boolean NOT NULL DEFAULT false,
  max_running            integer CHECK (max_running > 0),
  max_starts_per_minute  integer CHECK (max_starts_per_minute > 0),
  changed_at             timestamptz NOT NULL DEFAULT now(),
  changed_by             text NOT NULL
);
COMMENT ON TABLE dispatch_scopes IS 'Operator controls per scope (PATCH /api/v1/scopes/:scope). A scope without a row is unpaused and unlimited. Read by every assignment batch in its own transaction; rows of limited scopes are locked FOR UPDATE there, so limits hold exactly across replicas.';
COMMENT ON COLUMN dispatch_scopes.scope IS 'Task scope (dispatch_tasks.scope, lower case).';
COMMENT ON COLUMN dispatch_scopes.paused IS 'True: tasks of this scope are accepted but none is assigned until resumed.';
COMMENT ON COLUMN dispatch_scopes.max_running IS 'Most tasks of this scope assigned or running at once across the swarm; NULL for no limit.';
COMMENT ON COLUMN dispatch_scopes.max_starts_per_minute IS 'Most assignments of this scope in any 60 seconds (counted in dispatch_scope_starts while the limit is set); NULL for no limit.';
COMMENT ON COLUMN dispatch_scopes.changed_at IS 'Last change.';
COMMENT ON COLUMN dispatch_scopes.changed_by IS 'Who made the last change: a credential id, "bootstrap" for the admin token, or the agent in header mode.';

CREATE TABLE dispatch_scope_starts (
  scope       text NOT NULL,
  started_at  timestamptz NOT NULL,
  starts      integer NOT NULL CHECK (starts > 0)
);
CREATE INDEX dispatch_scope_starts_key ON dispatch_scope_starts (scope, started_at);
COMMENT ON TABLE dispatch_scope_starts IS 'Assignments of scopes that have max_starts_per_minute, one row per assignment batch and scope, written under the scope''s row lock; the sum over the last 60 s is the sliding window. Rows older than a few minutes are deleted by the next batch of the scope.';
COMMENT ON COLUMN dispatch_scope_starts.scope IS 'Task scope.';
COMMENT ON COLUMN dispatch_scope_starts.started_at IS 'The assigning transaction''s now(), the same instant as the assigned events'' created_at.';
COMMENT ON COLUMN dispatch_scope_starts.starts IS 'Tasks of the scope that batch assigned.';

CREATE TABLE dispatch_scope_events (
  id          bigint PRIMARY KEY DEFAULT nextval('dispatch_task_events_id_seq'),
  event_id    uuid NOT NULL DEFAULT dispatch_uuid_v7(),
  scope       text NOT NULL,
  event       text NOT NULL CHECK (event IN ('paused', 'resumed', 'limits_changed')),
  changed_by  text NOT NULL,
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dispatch_scope_events_scope ON dispatch_scope_events (scope, id);
COMMENT ON TABLE dispatch_scope_events IS 'Audit trail of scope controls: one row per change made by PATCH /api/v1/scopes/:scope, in the same transaction. Ids share dispatch_task_events_id_seq, so both trails replay together in id order; published to NATS as swarm.dispatch.scope.<event> through dispatch_event_outbox.';
COMMENT ON COLUMN dispatch_scope_events.id IS 'From the task events'' sequence: orders scope changes among task events.';
COMMENT ON COLUMN dispatch_scope_events.event_id IS 'Globally unique event id, carried in the published message (and used to deduplicate it).';
COMMENT ON COLUMN dispatch_scope_events.scope IS 'The scope changed.';
COMMENT ON COLUMN dispatch_scope_events.event IS 'paused, resumed, or limits_changed (max_running or max_starts_per_minute changed without a pause or resume).';
COMMENT ON COLUMN dispatch_scope_events.changed_by IS 'Who: a credential id, "bootstrap", or the agent in header mode.';
COMMENT ON COLUMN dispatch_scope_events.payload IS 'Event body as published: the scope''s controls after the change.';
COMMENT ON COLUMN dispatch_scope_events.created_at IS 'When the change was made.';

CREATE TRIGGER dispatch_scope_events_outbox AFTER INSERT ON dispatch_scope_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dispatch_queue_events_for_publication();

ALTER TABLE dispatch_event_outbox DROP CONSTRAINT dispatch_event_outbox_id_fkey;
COMMENT ON TABLE dispatch_event_outbox IS 'Task and scope events committed but not yet acknowledged by JetStream; the publisher deletes each id after the acknowledgement.';
COMMENT ON COLUMN dispatch_event_outbox.id IS 'dispatch_task_events.id or dispatch_scope_events.id (one sequence) of the owed event; publication follows this order.';
`,
    )
    .execute(db);
}
