import { type Kysely, sql } from 'kysely';

/**
 * Who else may read a task, kept where a list can walk it on an index. Besides its requester and
 * its current assignee (both columns of dispatch_tasks, each with an index in list order), a task
 * is readable by every agent that held an earlier attempt of it and by the requester of its parent
 * (issue 13). Both change rarely: a parent is set once, at insert, and an earlier holder exists
 * only once a task moved to another agent (a retry, a reassignment). So one narrow table holds
 * them, filled by two row triggers that fire on those rare rows only (their WHEN clauses keep the
 * assignment batch's UPDATE of a fresh task free of any call), with the task's created_at copied
 * so a reader's tasks come out of one index in the API's list order.
 *
 * Forward-only. Existing rows are backfilled from the audit trail and the parent links.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE TABLE dispatch_task_readers (
  task_id uuid NOT NULL REFERENCES dispatch_tasks (id) ON DELETE CASCADE,
  reader text NOT NULL,
  reason text NOT NULL CHECK (reason IN ('former_assignee', 'parent_requester')),
  task_created_at timestamptz NOT NULL,
  PRIMARY KEY (task_id, reader)
);
COMMENT ON TABLE dispatch_task_readers IS 'Agents that may read a task besides its requester and current assignee: agents that held an earlier attempt, and the requester of its parent. Written by triggers (dispatch_tasks_former_assignee, dispatch_tasks_parent_reader); read by task lists and GET /api/v1/tasks/:id for callers that do not read every task.';
COMMENT ON COLUMN dispatch_task_readers.task_id IS 'The task that may be read (its rows go with it when retention deletes it).';
COMMENT ON COLUMN dispatch_task_readers.reader IS 'The agent that may read it.';
COMMENT ON COLUMN dispatch_task_readers.reason IS 'former_assignee: held an earlier attempt, then the task went to another agent; parent_requester: requested the task''s parent.';
COMMENT ON COLUMN dispatch_task_readers.task_created_at IS 'The task''s created_at, copied so a reader''s tasks list in the API''s order from one index.';
CREATE INDEX dispatch_task_readers_list_idx ON dispatch_task_readers (reader, task_created_at DESC, task_id DESC);
COMMENT ON INDEX dispatch_task_readers_list_idx IS 'A reader''s tasks newest first, as GET /api/v1/tasks pages them.';

CREATE FUNCTION dispatch_remember_former_assignee() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO dispatch_task_readers (task_id, reader, reason, task_created_at)
  VALUES (NEW.id, OLD.assignee, 'former_assignee', NEW.created_at)
  ON CONFLICT (task_id, reader) DO NOTHING;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_remember_former_assignee() IS 'Keeps an agent that held an earlier attempt of a task able to read it once the task is assigned to another agent.';
CREATE TRIGGER dispatch_tasks_former_assignee
  AFTER UPDATE OF assignee ON dispatch_tasks
  FOR EACH ROW WHEN (OLD.assignee IS NOT NULL AND OLD.assignee IS DISTINCT FROM NEW.assignee)
  EXECUTE FUNCTION dispatch_remember_former_assignee();

CREATE FUNCTION dispatch_add_parent_reader() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO dispatch_task_readers (task_id, reader, reason, task_created_at)
  SELECT NEW.id, p.requester, 'parent_requester', NEW.created_at
    FROM dispatch_tasks p
   WHERE p.id = NEW.parent_id AND p.requester <> NEW.requester
  ON CONFLICT (task_id, reader) DO NOTHING;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION dispatch_add_parent_reader() IS 'Lets the requester of a task''s parent read the task (a subtask made by another agent).';
CREATE TRIGGER dispatch_tasks_parent_reader
  AFTER INSERT ON dispatch_tasks
  FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL)
  EXECUTE FUNCTION dispatch_add_parent_reader();

INSERT INTO dispatch_task_readers (task_id, reader, reason, task_created_at)
SELECT DISTINCT ON (t.id, e.agent_id) t.id, e.agent_id, 'former_assignee', t.created_at
  FROM dispatch_task_events e JOIN dispatch_tasks t ON t.id = e.task_id
 WHERE e.event = 'assigned' AND e.agent_id IS NOT NULL AND e.agent_id IS DISTINCT FROM t.assignee
ON CONFLICT (task_id, reader) DO NOTHING;
INSERT INTO dispatch_task_readers (task_id, reader, reason, task_created_at)
SELECT c.id, p.requester, 'parent_requester', c.created_at
  FROM dispatch_tasks c JOIN dispatch_tasks p ON p.id = c.parent_id
 WHERE p.requester <> c.requester
ON CONFLICT (task_id, reader) DO NOTHING;
`,
    )
    .execute(db);
}
