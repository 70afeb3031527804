import { type Kysely, sql } from 'kysely';

/**
 * Trace context: the W3C `traceparent` a requester sent with a task, kept so the assignee and
 * every event of the task carry it on, and a swarm's traces join up across agents.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
ALTER TABLE dispatch_tasks
  ADD COLUMN traceparent text
    CONSTRAINT dispatch_tasks_traceparent_check CHECK (traceparent ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');

COMMENT ON COLUMN dispatch_tasks.traceparent IS 'W3C trace context (traceparent header) sent with the create request: handed to the assignee in the task JSON and on every NATS event of the task; Dispatch''s own spans (when OTLP export is on) are its children. NULL: sent without one.';
`,
    )
    .execute(db);
}
