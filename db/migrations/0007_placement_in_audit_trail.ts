import { type Kysely, sql } from 'kysely';

/**
 * The placement decision moves from the task row to the task's `assigned` event.
 *
 * The record (about 1.4 kB: ten candidates, each score and why it lost) sat in
 * dispatch_tasks.placement, under PostgreSQL's 2 kB TOAST threshold, so it stayed inline and was
 * copied into every later version of the row: starting, progress, completion and every retry
 * each wrote it again, to the heap and to the WAL (often as part of a full page image). A task
 * row is now a few hundred bytes wide, and the decision is written once, append-only, beside
 * the event it explains. Each attempt keeps its own decision, so the trail now says why every
 * attempt went where it did, not just the last one.
 *
 * Existing decisions are copied onto the `assigned` event of the attempt they belong to.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
ALTER TABLE dispatch_task_events ADD COLUMN placement jsonb;
COMMENT ON COLUMN dispatch_task_events.placement IS 'Assigned events only: the placement decision (agents considered, each score, why each other one lost or was filtered). Not published to NATS; served by GET /api/v1/tasks/:id/placement.';

UPDATE dispatch_task_events e
   SET placement = t.placement
  FROM dispatch_tasks t
 WHERE t.placement IS NOT NULL
   AND e.task_id = t.id AND e.event = 'assigned' AND e.attempt = t.attempt;

ALTER TABLE dispatch_tasks DROP COLUMN placement;
`,
    )
    .execute(db);
}
