import { type Kysely, sql } from 'kysely';

/**
 * Rules that must hold whichever path changes an agent: the REST heartbeat, the Warren sync, a
 * NATS lifecycle event, the heartbeat-expiry sweep, or a DBA's UPDATE.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
-- An agent that stops gives its tasks back at once, without spending a retry. Each task counts
-- the agents that died holding it; at lifecycle.reassign_budget (the session setting
-- dispatch.reassign_budget, set by Dispatch on every connection; 3 when unset) it fails instead
-- of cycling through a swarm that keeps dying.
CREATE FUNCTION dispatch_agents_return_tasks_on_stop() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  budget integer := coalesce(nullif(current_setting('dispatch.reassign_budget', true), '')::integer, 3);
  returned integer;
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
  ), e AS (
    INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
    SELECT id, CASE WHEN status = 'pending' THEN 'reassigned' ELSE 'failed' END, NEW.name, attempt,
           CASE WHEN status = 'pending'
                THEN jsonb_build_object('task_id', id, 'from', NEW.name, 'reason', 'agent stopped', 'reassign_count', reassign_count)
                ELSE jsonb_build_object('task_id', id, 'error', error) END
      FROM t
  )
  SELECT coalesce(sum(dispatch_unschedule_timeout(id)), 0) INTO returned FROM t;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_agents_return_tasks_on_stop() IS 'When an agent becomes stopped, its assigned and running tasks go back to pending (event reassigned), or fail once the reassignment budget is spent.';

CREATE TRIGGER dispatch_agents_return_tasks_on_stop AFTER UPDATE OF status ON dispatch_agents
  FOR EACH ROW WHEN (NEW.status = 'stopped' AND OLD.status IS DISTINCT FROM 'stopped')
  EXECUTE FUNCTION dispatch_agents_return_tasks_on_stop();

-- The waiting-too-long alarm scans only tasks that asked for one and have not raised it yet.
CREATE INDEX dispatch_tasks_start_alarm_idx ON dispatch_tasks (created_at)
  WHERE status = 'pending' AND start_timeout_ms IS NOT NULL AND start_alarm_at IS NULL;
`,
    )
    .execute(db);
}
