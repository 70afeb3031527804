import type pg from 'pg';
import { TERMINAL_STATUSES } from '../db/columns.js';

/**
 * Deletes up to `limit` finished tasks whose completed_at is older than `keepMs`, oldest first,
 * with their events (ON DELETE CASCADE). A task is kept while any of its events is still owed to
 * NATS (in dispatch_event_outbox), and while any of its subtasks is unfinished or finished
 * within the window, so nothing unpublished is lost and a child never outlives the parent its
 * parent_id names; and while a task that depends on it is unfinished, whose assignee may still
 * read its result. Rows another transaction holds are skipped, not waited for.
 */
export async function deleteFinishedTasks(conn: pg.ClientBase, keepMs: number, limit: number): Promise<number> {
  const { rowCount } = await conn.query(
    `WITH doomed AS (
       SELECT t.id
         FROM dispatch_tasks t
        WHERE t.completed_at < now() - $1 * interval '1 millisecond'
          AND t.status = ANY ($2::text[])
          AND NOT EXISTS (SELECT 1 FROM dispatch_tasks c
                           WHERE c.parent_id = t.id
                             AND (c.status <> ALL ($2::text[]) OR c.completed_at >= now() - $1 * interval '1 millisecond'))
          AND NOT EXISTS (SELECT 1 FROM dispatch_task_dependencies d JOIN dispatch_tasks w ON w.id = d.task_id
                           WHERE d.depends_on_id = t.id AND w.status <> ALL ($2::text[]))
          AND NOT EXISTS (SELECT 1 FROM dispatch_task_events e
                            JOIN dispatch_event_outbox o ON o.id = e.id
                           WHERE e.task_id = t.id)
        ORDER BY t.completed_at
        LIMIT $3
          FOR UPDATE OF t SKIP LOCKED
     )
     DELETE FROM dispatch_tasks t USING doomed d WHERE t.id = d.id`,
    [keepMs, TERMINAL_STATUSES, limit],
  );
  return rowCount ?? 0;
}
