import { type Kysely, sql } from 'kysely';

/**
 * An agent's registration and every heartbeat after it (PUT /api/v1/agents/:id, one upsert for a
 * group of them) no longer count the agent's active tasks. The BEFORE INSERT trigger that starts
 * a new agent row from the tasks it already holds fired for every row of the upsert, conflicting
 * ones too, whose count ON CONFLICT DO UPDATE then threw away. Its plan, made once per session,
 * could read every assigned and running task of every agent to count one agent's: measured in the
 * history benchmark (1 M finished tasks, 40 k assigned), 300 to 700 ms an agent, 33 k buffers
 * read each time, so one heartbeat of 50 agents ran 8 to 15 s holding their rows, and the
 * assignment batches that lock them waited behind it.
 *
 * Agent rows are never deleted, so a row this trigger can see makes the INSERT a conflict: it
 * returns at once. A name seen for the first time (or one whose row another transaction is
 * inserting, not yet committed) is counted as before. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE OR REPLACE FUNCTION dispatch_agents_count_existing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM dispatch_agents WHERE name = NEW.name) THEN
    RETURN NEW;
  END IF;
  NEW.active_tasks := (SELECT count(*) FROM dispatch_tasks
                        WHERE assignee = NEW.name AND status IN ('assigned', 'running'));
  NEW.released_folded := coalesce((SELECT released FROM dispatch_agent_releases WHERE agent = NEW.name), 0);
  RETURN NEW;
END $$;

COMMENT ON FUNCTION dispatch_agents_count_existing() IS 'BEFORE INSERT on dispatch_agents: a new agent row starts from the tasks its name already holds and from its name''s release count, which outlives the row. When the row exists (rows are never deleted) the INSERT is an upsert''s conflict, a registration or a heartbeat, and nothing is counted (migration 0031).';
`,
    )
    .execute(db);
}
