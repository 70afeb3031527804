import { sql } from 'kysely';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { readFeedSince, readHorizon } from '../../src/agents/assignment-feed.queries.js';
import type { Db } from '../../src/db/database.js';
import { useTestDatabase } from '../helpers/database.js';

/**
 * The assignment streams' live read runs on every notification, on the replica's LISTEN session,
 * with every agent connected to the replica. A session keeps its plans for hours, and the audit
 * trail grows under them: the read must cost what the notification carries, whatever the history
 * and the number of agents, with a plan made while the tables were small.
 */
const database = useTestDatabase();
const AGENTS = Array.from({ length: 200 }, (_, i) => `feed-agent-${String(i).padStart(3, '0')}`);
const HISTORY = 20_000;

/** `count` tasks assigned to the agents in turn, each with its `assigned` event, in one transaction. */
async function assignedTasks(db: Db, count: number, status: 'assigned' | 'completed'): Promise<void> {
  await sql`
    WITH t AS (
      INSERT INTO dispatch_tasks (requester, title, scope, status, assignee, attempt, assigned_at, completed_at)
      SELECT 'feed-test', 'task ' || g, 'feed', ${status}, (${AGENTS}::text[])[1 + g % ${AGENTS.length}], 1, now(),
             CASE WHEN ${status} = 'completed' THEN now() END
        FROM generate_series(1, ${count}) AS g
      RETURNING id, assignee
    )
    INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
    SELECT id, 'assigned', assignee, 1, '{}'::jsonb FROM t`.execute(db);
}

/** Rows of `table` this session's transaction has read so far, by index and by sequential scan. */
async function rowsRead(session: pg.PoolClient, table: string): Promise<number> {
  const { rows } = await session.query<{ n: number }>(
    'SELECT (coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0))::int AS n FROM pg_stat_xact_user_tables WHERE relname = $1',
    [table],
  );
  return rows[0]?.n ?? 0;
}

describe('the assignment streams\' live read', () => {
  it('reads the events a notification carries and their tasks, not the history, with a plan made on small tables', async () => {
    const { db, pool } = database().handle;
    await sql`ALTER TABLE dispatch_tasks SET (autovacuum_enabled = off)`.execute(db);
    await sql`ALTER TABLE dispatch_task_events SET (autovacuum_enabled = off)`.execute(db);
    await assignedTasks(db, 3, 'assigned');
    await sql`ANALYZE dispatch_tasks`.execute(db);
    await sql`ANALYZE dispatch_task_events`.execute(db);

    const session = await pool.connect();
    try {
      // The session reads as a replica's does from its start, long enough for its plans to settle.
      const start = await readHorizon(db);
      for (let i = 0; i < 8; i++) await readFeedSince(session, start, AGENTS);

      // A history arrives, statistics not yet updated; then one notification's worth of work.
      await assignedTasks(db, HISTORY, 'completed');
      const from = await readHorizon(db);
      await assignedTasks(db, 5, 'assigned');

      await session.query('BEGIN');
      const [tasksBefore, eventsBefore] = [await rowsRead(session, 'dispatch_tasks'), await rowsRead(session, 'dispatch_task_events')];
      const { ready, heldBack } = await readFeedSince(session, from, AGENTS);
      const tasksRead = (await rowsRead(session, 'dispatch_tasks')) - tasksBefore;
      const eventsRead = (await rowsRead(session, 'dispatch_task_events')) - eventsBefore;
      await session.query('COMMIT');

      expect(heldBack).toBe(0);
      expect(ready.map((item) => item.event.agent)).toEqual(AGENTS.slice(1, 6));
      expect(ready.every((item) => item.task?.status === 'assigned' && item.task.id === item.event.taskId)).toBe(true);
      expect(tasksRead, 'task rows read').toBeLessThanOrEqual(5);
      expect(eventsRead, 'event rows read').toBeLessThanOrEqual(5);
    } finally {
      session.release();
    }
  });
});
