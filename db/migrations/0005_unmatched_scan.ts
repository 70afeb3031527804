import { type Kysely, sql } from 'kysely';

/**
 * Recording `unmatched` without walking the whole queue, and without waking assigners for work
 * nobody can take.
 *
 * A task whose scope no agent serves when it is created is marked unmatched by the INSERT itself
 * (src/tasks/task.queries.ts insertTasks, with its event), so the common case costs no second
 * version of the row, and it wakes no assigner: there is nobody to give it to. An agent that
 * later gains the capability wakes the assigner itself (migration 0002).
 *
 * The pass that records `unmatched` runs at the end of every drain. It looked for pending tasks
 * not yet marked whose scope no agent serves, which PostgreSQL could only answer by reading every
 * pending row: with tasks arriving for a scope nobody serves, each pass read a backlog that grew
 * by the minute (measured: 16 ms a pass at 30 k pending, more PostgreSQL time than the inserts
 * themselves under 3 k creates/s). This index holds only pending tasks not yet marked, keyed by
 * scope, so the pass reads the distinct scopes waiting (one probe per scope) and then only the
 * tasks of the scopes nobody serves.
 *
 * Marking a task moves it out of this index, so that update is no longer HOT; it happens once
 * per task, and only for work nobody can take.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE INDEX dispatch_tasks_unmarked_idx ON dispatch_tasks (scope)
  WHERE status = 'pending' AND unmatched_at IS NULL;
COMMENT ON INDEX dispatch_tasks_unmarked_idx IS 'Pending tasks whose unmatched event is not yet recorded, by scope: the unmatched pass probes it once per scope.';

-- One definition of "somebody could serve this scope", for the create path and the marking pass.
CREATE VIEW dispatch_capable_scopes AS
  SELECT DISTINCT unnest(capabilities) AS scope FROM dispatch_agents
   WHERE NOT drained AND status IN ('ready', 'sleeping', 'busy', 'starting');
COMMENT ON VIEW dispatch_capable_scopes IS 'Scopes some agent could serve once it has a free slot: it has the tag and is not drained, stopped, degraded or unknown. A pending task of any other scope is unmatched.';

CREATE OR REPLACE FUNCTION dispatch_tasks_wake_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Tasks marked unmatched on insert have nobody to go to: only the others need an assigner.
  IF EXISTS (SELECT 1 FROM new_rows WHERE status = 'pending' AND unmatched_at IS NULL) THEN
    PERFORM dispatch_request_assignment();
  END IF;
  RETURN NULL;
END $$;
`,
    )
    .execute(db);
}
