import { type Kysely, sql } from 'kysely';

/**
 * A writer that finds no assigner draining now wakes the replicas with NOTIFY dispatch_assign,
 * which each replica hears on the LISTEN connection it already holds (src/db/listener.ts) and
 * answers by draining at once (src/assignment/assignment.service.ts). It used to enqueue an
 * `assignment:run` job: the same NOTIFY (graphile-worker's), plus a job row written with the
 * task, a worker's get_job and the job's completion; the path from a commit to an assigner
 * starting took 3.6 ms at idle, of which 0.8 ms was the notification's delivery (bench hops).
 *
 * The lock protocol of migration 0002 is unchanged: BARRIER shared until commit, then the probe
 * of ACTIVE; the notification goes out at commit, so whoever answers it sees the task. A
 * notification no replica hears (every LISTEN connection down at that instant) is caught by the
 * replicas' tick (assignment.tick_interval_ms) and by the drain each replica makes when its LISTEN
 * connection is back. `assignment:run` jobs remain for passes scheduled at a time
 * (dispatch_request_assignment_at) and for a replica handing over when it stops.
 *
 * Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE OR REPLACE FUNCTION dispatch_request_assignment() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(72142502);
  -- A probe, released at once: holding it would let one open transaction keep assigners out.
  IF pg_try_advisory_lock_shared(72142501) THEN
    PERFORM pg_advisory_unlock_shared(72142501);
    -- Delivered at commit; a transaction's identical notifications are folded into one.
    PERFORM pg_notify('dispatch_assign', '');
  END IF;
END $$;
COMMENT ON FUNCTION dispatch_request_assignment() IS 'Wakes the assigners (NOTIFY dispatch_assign at commit) unless one is already draining the queue (see migrations 0002 and 0019).';
`,
    )
    .execute(db);
}
