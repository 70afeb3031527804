import { type Kysely, sql } from 'kysely';

/**
 * The assignment streams' live read (src/agents/assignment-feed.queries.ts), run by every replica
 * on every notification, becomes a function whose plan is made once per session and cannot grow
 * with the audit trail.
 *
 * It was a named statement over dispatch_assignment_feed, `tx >= $1 AND agent = ANY($2)`, sent
 * with the replica's connected agents. Three things were wrong with it, measured on a database
 * holding 50,000 assigned events of 200 agents, analysed (pgbench, one client, 400 reads of the
 * 51 events of the last three transactions):
 * - with statistics, PostgreSQL planned it anew on every call (pg_prepared_statements: 12 custom
 *   plans in 12 executions): 2.1-2.4 ms a read, of which about 1 ms planning;
 * - its generic plan, the one a session keeps when it first planned the read on small tables,
 *   merge-joined the events with every task by primary key (1,476 buffers, all 50,000 tasks) and
 *   cost enough to be compiled by JIT on every call: 35-90 ms a read;
 * - it found the events by one index probe per agent (dispatch_task_events_stream_agent_idx):
 *   600 buffers for 200 agents, whatever the notification carried.
 *
 * dispatch_feed_since reads the events of every agent since the horizon along
 * dispatch_task_events_stream_idx (tx, id), keeps those of the given agents (a hash of them), and
 * fetches each one's task by primary key: a notification's few events cost a few buffers, however
 * many agents a replica serves and however long the history. Its plan is generic and made once
 * per session, with sequential scans and JIT off, so no plan kept from a small table reads a large
 * one: 1.0-1.2 ms a read in the measurement above. The horizon is decided in the same statement,
 * as before. The view and its other reader (a reconnect's replay, one agent at a time, which the
 * per-agent index serves) are unchanged, and so is the statement a replica of the previous
 * version sends. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE FUNCTION dispatch_feed_since(from_tx xid8, agents text[])
RETURNS TABLE (feed_horizon xid8, feed_id bigint, feed_tx xid8, feed_agent text, feed_kind text, feed_task_id uuid, feed_attempt integer, feed_task dispatch_tasks)
LANGUAGE plpgsql
SET enable_seqscan = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  RETURN QUERY
  WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap),
  recent AS MATERIALIZED (
    SELECT * FROM dispatch_assignment_feed WHERE tx >= from_tx
  ),
  f AS MATERIALIZED (
    SELECT * FROM recent WHERE recent.agent IN (SELECT unnest(agents))
  ),
  h AS MATERIALIZED (
    -- Only an event at or past the snapshot's xmin makes it worth reading which running
    -- transactions are of other databases (migration 0024).
    SELECT CASE WHEN EXISTS (SELECT 1 FROM f WHERE f.tx >= pg_snapshot_xmin(s.snap)) THEN dispatch_feed_horizon(s.snap)
                ELSE pg_snapshot_xmin(s.snap) END AS below
      FROM s
  )
  SELECT h.below, f.id, f.tx, f.agent, f.kind, f.task_id, f.attempt, t.x
    FROM h LEFT JOIN f ON true
    LEFT JOIN LATERAL (SELECT x FROM dispatch_tasks x WHERE x.id = f.task_id OFFSET 0) t ON true
   ORDER BY f.tx, f.id;
END $$;

COMMENT ON FUNCTION dispatch_feed_since(xid8, text[]) IS 'The assignment streams'' live read: the feed events of these agents from transaction from_tx on, in (tx, id) order, each with its task (NULL once deleted), and the horizon below which every transaction of this database has ended, all from one snapshot (one row with NULL events when there are none). Reads every agent''s recent events by transaction and keeps these agents'': its cost follows the events since from_tx, not the agents or the history. Plan generic, made once per session; sequential scans and JIT off (migration 0032).';
`,
    )
    .execute(db);
}
