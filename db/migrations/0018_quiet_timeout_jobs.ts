import { type Kysely, sql } from 'kysely';

/**
 * Timeout jobs are written without waking anyone. dispatch_schedule_timeouts added the jobs of a
 * new assignment batch with graphile_worker.add_jobs, which sends NOTIFY "jobs:insert" carrying
 * the number of jobs: every replica then woke that many idle workers, and each ran get_job, which
 * walks the future jobs at the head of graphile-worker's index to find nothing due (a timeout job
 * is due minutes later). At 50,000 open attempts that was 1.4 ms of database time per worker per
 * batch, three replicas' worth of it during a drain, and it made each added replica slow the
 * assigner down (docs/BENCHMARKS.md). Workers find a future job by polling, as they always did
 * for the jobs this function moved; the notification never made a timeout earlier.
 *
 * The jobs are written as add_jobs writes them (src/jobs/graphile-worker.queries.ts lists the
 * private columns; test/integration/graphile-worker.private.test.ts pins them): a job already
 * running or out of attempts lets go of its key, so the new deadline gets a job of its own.
 *
 * Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE OR REPLACE FUNCTION dispatch_schedule_timeouts(task_ids uuid[], attempts integer[], run_ats timestamptz[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  check_task_id integer;
BEGIN
  IF task_ids IS NULL OR cardinality(task_ids) = 0 THEN
    RETURN 0;
  END IF;
  SELECT id INTO check_task_id FROM graphile_worker._private_tasks WHERE identifier = 'timeouts:check';
  IF check_task_id IS NULL THEN
    INSERT INTO graphile_worker._private_tasks (identifier) VALUES ('timeouts:check')
      ON CONFLICT (identifier) DO UPDATE SET identifier = excluded.identifier
      RETURNING id INTO check_task_id;
  END IF;
  -- Not graphile_worker.add_jobs: its NOTIFY wakes idle workers on every replica for jobs due later.
  UPDATE graphile_worker._private_jobs j
     SET key = NULL, attempts = j.max_attempts, updated_at = now()
   WHERE j.key IN (SELECT 'timeout:' || t::text FROM unnest(task_ids) AS t) AND j.is_available IS NOT TRUE;
  INSERT INTO graphile_worker._private_jobs AS j (task_id, payload, run_at, max_attempts, key, priority)
  SELECT check_task_id, json_build_object('task_id', w.task_id, 'attempt', w.attempt), w.run_at, 10,
         'timeout:' || w.task_id::text, 0
    FROM unnest(task_ids, attempts, run_ats) AS w(task_id, attempt, run_at)
  ON CONFLICT (key) DO UPDATE
     SET payload = excluded.payload, run_at = excluded.run_at, revision = j.revision + 1,
         attempts = 0, last_error = NULL, updated_at = now()
   WHERE j.locked_at IS NULL;
  RETURN cardinality(task_ids);
END $$;
COMMENT ON FUNCTION dispatch_schedule_timeouts(uuid[], integer[], timestamptz[]) IS 'Creates or moves the timeout job of each given task to its deadline, without NOTIFY (workers poll for future jobs); returns how many.';
`,
    )
    .execute(db);
}
