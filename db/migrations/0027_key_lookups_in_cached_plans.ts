import { type Kysely, sql } from 'kysely';

/**
 * Two functions whose plans a session keeps, and whose every statement finds its rows by key, may
 * no longer plan a sequential scan.
 *
 * dispatch_apply_assignments (an assignment batch's write, migration 0026) is planned once per
 * session, generically. A replica that connects while dispatch_tasks is nearly empty (a fresh
 * install, a test, the benchmark) got a plan that hash-joins the decisions against a sequential
 * scan of every task, and kept it while the table grew, until something invalidated it: in the
 * round trip benchmark, every batch read the whole table (2,000 to 10,000 rows a batch, growing
 * with history), 12% of the assigning backend's CPU. With sequential scans off the planner takes
 * the primary key, as a freshly made plan does on a table of any size.
 *
 * dispatch_apply_load_changes (the active-task counters' trigger, migration 0022) raises each
 * winning agent's active_tasks and tests whether a freed agent has work waiting: with 200 agents
 * both read every agent (a hash join over a sequential scan of dispatch_agents), for the few the
 * statement changed; they now look each agent up by name.
 *
 * Only these functions' own planning is affected (a function's SET applies while it runs);
 * statements that have no index to use still scan. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
ALTER FUNCTION dispatch_apply_assignments(jsonb, integer) SET enable_seqscan = off;
ALTER FUNCTION dispatch_apply_load_changes(text[], integer[]) SET enable_seqscan = off;

COMMENT ON FUNCTION dispatch_apply_assignments(jsonb, integer) IS 'An assignment batch''s write, sent with its COMMIT: decisions is a JSON array of {id, agent, placement}; each task still pending gets its new attempt, assignee and deadline, an assigned event carrying the placement, and its agent''s last_assigned_at (its releases folded into active_tasks); a deadline sooner than notice_within_ms is announced to the due timer. Returns the tasks assigned. PL/pgSQL so that a session plans it once (migration 0026), with sequential scans off so that a plan made while the tables were small still finds rows by key (migration 0027).';
COMMENT ON FUNCTION dispatch_apply_load_changes(text[], integer[]) IS 'Applies net changes in active tasks per agent (parallel arrays: agent, change): a rise to dispatch_agents.active_tasks, a fall to dispatch_agent_releases (migration 0022), waking the assigners when a freed agent has work waiting. Sequential scans off: it changes a few agents, found by name (migration 0027).';
`,
    )
    .execute(db);
}
