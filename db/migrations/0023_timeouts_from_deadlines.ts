import { type Kysely, sql } from 'kysely';

/**
 * Attempts time out from their row's deadline_at, not from a graphile-worker job each. Every
 * assignment wrote a `timeouts:check` job (dispatch_schedule_timeouts: a row in graphile-worker's
 * jobs table and four index entries, a fifth of an assignment's WAL records), every completion
 * deleted it again (dispatch_unschedule_timeout), and the jobs table held one row per open
 * attempt. The deadline was in the task's row all along, indexed (dispatch_tasks_deadline_idx):
 * the due timer (src/lifecycle/due-timer.ts), which already wakes at run_at and start_by
 * instants, now also wakes at the earliest deadline and times out, in one statement, every
 * attempt past its own. A deadline sooner than the timer's longest wait is announced by the
 * assignment that sets it (dispatch_notify_due, NOTIFY dispatch_due); progress only ever moves a
 * deadline later, so it announces nothing.
 *
 * For a rolling upgrade the two functions stay, doing nothing: replicas of the previous version
 * still call them while they run, and their attempts time out by the new replicas' due timer
 * (or by their own sweep) from the same column. A later migration drops them. The timeout jobs
 * no worker holds are deleted here; one running now finishes on its replica. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE OR REPLACE FUNCTION dispatch_schedule_timeouts(task_ids uuid[], attempts integer[], run_ats timestamptz[]) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 0 $$;
COMMENT ON FUNCTION dispatch_schedule_timeouts(uuid[], integer[], timestamptz[]) IS 'Does nothing since migration 0023 (attempts time out from deadline_at, by the due timer); kept for replicas of the previous version during a rolling upgrade.';

CREATE OR REPLACE FUNCTION dispatch_unschedule_timeout(timed_task uuid) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 0 $$;
COMMENT ON FUNCTION dispatch_unschedule_timeout(uuid) IS 'Does nothing since migration 0023 (attempts time out from deadline_at, by the due timer); kept for replicas of the previous version during a rolling upgrade.';

CREATE OR REPLACE FUNCTION dispatch_agents_return_tasks_on_stop() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  budget integer := coalesce(nullif(current_setting('dispatch.reassign_budget', true), '')::integer, 3);
BEGIN
  WITH t AS (
    UPDATE dispatch_tasks d
       SET status = CASE WHEN d.reassign_count + 1 >= budget THEN 'failed' ELSE 'pending' END,
           reassign_count = d.reassign_count + 1,
           completed_at = CASE WHEN d.reassign_count + 1 >= budget THEN now() END,
           error = CASE WHEN d.reassign_count + 1 >= budget
                        THEN format('reassignment budget exhausted: %s agents stopped while holding this task (last: %s)',
                                    d.reassign_count + 1, NEW.name)
                        ELSE d.error END,
           avoid_agent = NEW.name,
           deadline_at = NULL,
           not_before = NULL
     WHERE d.assignee = NEW.name AND d.status IN ('assigned', 'running')
    RETURNING d.id, d.status, d.attempt, d.reassign_count, d.error
  )
  INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
  SELECT id, CASE WHEN status = 'pending' THEN 'reassigned' ELSE 'failed' END, NEW.name, attempt,
         CASE WHEN status = 'pending'
              THEN jsonb_build_object('task_id', id, 'from', NEW.name, 'reason', 'agent stopped', 'reassign_count', reassign_count)
              ELSE jsonb_build_object('task_id', id, 'error', error) END
    FROM t;
  RETURN NULL;
END $$;

COMMENT ON INDEX dispatch_tasks_deadline_idx IS 'Open attempts by deadline: the due timer arms for the first and times out those past theirs (migration 0023), and the overdue view reads it.';

DELETE FROM graphile_worker._private_jobs WHERE key LIKE 'timeout:%' AND locked_at IS NULL;
`,
    )
    .execute(db);
}
