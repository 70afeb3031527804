import { type Kysely, sql } from 'kysely';

/**
 * Recurring tasks (POST /api/v1/schedules). A schedule is a cron expression in a time zone and a
 * task template; next_run_at is its next occurrence. Every replica's ScheduleRunner
 * (src/schedules/schedule.runner.ts) claims due schedules FOR UPDATE SKIP LOCKED, creates their
 * tasks and advances next_run_at in one transaction, so an occurrence is created once across
 * replicas, and a replica killed mid-way leaves nothing half done. The task's Idempotency-Key,
 * `schedule:<id>@<occurrence>`, unique per requester, makes a second task for the same
 * occurrence impossible even then.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE TABLE dispatch_schedules (
  id            uuid PRIMARY KEY DEFAULT dispatch_uuid_v7(),
  owner         text NOT NULL CHECK (length(owner) BETWEEN 1 AND 200),
  cron          text NOT NULL CHECK (length(cron) BETWEEN 1 AND 200),
  time_zone     text NOT NULL CHECK (length(time_zone) BETWEEN 1 AND 100),
  template      jsonb NOT NULL,
  catch_up      text NOT NULL DEFAULT 'skip' CHECK (catch_up IN ('skip', 'one')),
  paused        boolean NOT NULL DEFAULT false,
  next_run_at   timestamptz,
  last_run_at   timestamptz,
  last_task_id  uuid,
  last_error    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT dispatch_schedules_paused_has_no_next CHECK (NOT paused OR next_run_at IS NULL)
);
COMMENT ON TABLE dispatch_schedules IS 'Recurring tasks: a cron expression in a time zone and a task template. The ScheduleRunner of any replica creates the task of each occurrence once (FOR UPDATE SKIP LOCKED, next_run_at advanced in the same transaction).';
COMMENT ON COLUMN dispatch_schedules.id IS 'Schedule id; its tasks carry the Idempotency-Key schedule:<id>@<occurrence, ISO 8601>.';
COMMENT ON COLUMN dispatch_schedules.owner IS 'The agent that created the schedule: the requester of every task it creates.';
COMMENT ON COLUMN dispatch_schedules.cron IS 'Cron expression (5 fields, or 6 with seconds first), read by croner.';
COMMENT ON COLUMN dispatch_schedules.time_zone IS 'IANA time zone the cron expression is read in (daylight saving time included).';
COMMENT ON COLUMN dispatch_schedules.template IS 'The task to create at each occurrence: the fields of POST /api/v1/tasks (title, scope, priority, context, ...).';
COMMENT ON COLUMN dispatch_schedules.catch_up IS 'Occurrences missed by more than schedules.late_after_ms (every replica down): skip creates none of them; one creates one task for them all.';
COMMENT ON COLUMN dispatch_schedules.paused IS 'A paused schedule creates nothing; resuming starts from the next occurrence after the resume.';
COMMENT ON COLUMN dispatch_schedules.next_run_at IS 'The next occurrence not yet handled; null while paused or when the expression has no future time.';
COMMENT ON COLUMN dispatch_schedules.last_run_at IS 'The occurrence of the last task created.';
COMMENT ON COLUMN dispatch_schedules.last_task_id IS 'The last task created (it may since have been deleted by retention).';
COMMENT ON COLUMN dispatch_schedules.last_error IS 'Why the last occurrence created no task (its template was refused), or null.';
COMMENT ON COLUMN dispatch_schedules.created_at IS 'When the schedule was created.';
COMMENT ON COLUMN dispatch_schedules.updated_at IS 'Last change to the row (maintained by trigger).';

-- What the runners poll: the due schedules, soonest first.
CREATE INDEX dispatch_schedules_due_idx ON dispatch_schedules (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX dispatch_schedules_owner_idx ON dispatch_schedules (owner, created_at DESC, id DESC);

CREATE TRIGGER dispatch_schedules_touch BEFORE UPDATE ON dispatch_schedules
  FOR EACH ROW EXECUTE FUNCTION dispatch_touch_updated_at();
`,
    )
    .execute(db);
}
