import { type Kysely, sql } from 'kysely';

/**
 * An assignment batch's first statement no longer locks or reads any agent when no task is
 * pending: the batch now calls dispatch_lock_agents_for_pending_work, which asks first and only
 * then calls dispatch_lock_assignable_agents (migration 0026, unchanged).
 *
 * A drain confirms that the queue is empty before it goes idle (a batch after the last one that
 * placed work, and one more after the writers that saw it active have committed: migration 0002).
 * Each of those batches locked every free agent and read all the others, then claimed nothing: at
 * low rates, when each new task gets a drain of its own, that was two of every three batches, and
 * the agents' lock and read is the batch's costliest statement apart from the write (1.4 ms a
 * call with 200 agents in the round trip benchmark at 73 tasks/s; 1,323 calls for 704 batches
 * that placed work). The new function tries ACTIVE (when asked), then asks
 * dispatch_pending_tasks_exist(); with nothing pending it returns empty agent lists at once, taking
 * neither the scope-controls gate nor the claim's planner settings, and the assigner ends the batch
 * without its claim.
 *
 * The question is asked after ACTIVE and with a snapshot of its own, taken after the batch began,
 * as the claim's was: a task committed before a wake-up, or before the writers' barrier was
 * waited out, is seen (the protocol of migration 0002 asks no more of a batch's look). Pending
 * tasks that no agent can take, or that are not due yet, still make the batch lock and claim, as
 * before. The function it wraps is left as it was, so a replica of the previous version keeps calling
 * it unchanged during a rolling upgrade. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE FUNCTION dispatch_pending_tasks_exist() RETURNS boolean
  LANGUAGE plpgsql STABLE
  SET enable_seqscan = off
AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM dispatch_tasks WHERE status = 'pending');
END $$;

COMMENT ON FUNCTION dispatch_pending_tasks_exist() IS 'Whether any task is pending (due or not, servable or not), read through a partial index on pending tasks: the assignment batch''s first question (dispatch_lock_agents_for_pending_work). PL/pgSQL so that a session plans it once, with sequential scans off so that a plan made while dispatch_tasks was nearly empty does not read every finished task once it is large (migration 0028).';

CREATE FUNCTION dispatch_lock_agents_for_pending_work(default_limit integer, take_active boolean, share_index integer, share_of integer)
  RETURNS TABLE (took_active boolean, locked_agents json, other_agents json)
  LANGUAGE plpgsql
AS $$
DECLARE
  -- 72142501: the assigner's ACTIVE session lock (migration 0002).
  is_active boolean := CASE WHEN take_active THEN pg_try_advisory_lock(72142501) ELSE true END;
BEGIN
  IF NOT is_active OR NOT dispatch_pending_tasks_exist() THEN
    -- Another assigner is active, or there is nothing to place: no agent is locked or read.
    RETURN QUERY SELECT is_active, '[]'::json, '[]'::json;
  ELSE
    -- ACTIVE is held (or was not asked for): the first statement as before, without asking again.
    RETURN QUERY SELECT * FROM dispatch_lock_assignable_agents(default_limit, false, share_index, share_of);
  END IF;
END $$;

COMMENT ON FUNCTION dispatch_lock_agents_for_pending_work(integer, boolean, integer, integer) IS 'An assignment batch''s first statement, run right after its BEGIN (migration 0028): with take_active, tries the assigner''s ACTIVE lock and does nothing more without it; with no task pending, returns no agents and does nothing more; otherwise returns what dispatch_lock_assignable_agents returns (the scope-controls gate and the claim''s planner settings taken, the free agents locked, the others read).';
`,
    )
    .execute(db);
}
