import { sql } from 'kysely';
import { z } from 'zod';
import type { Db } from '../db/database.js';

const count = z.number().int();

/** GET /api/v1/stats (`QueueStats` in openapi.json): open work now, finished work over the window. */
export const queueStatsJsonSchema = z
  .object({
    waiting: count.describe('waiting for dependencies'),
    pending: count,
    assigned: count,
    running: count,
    completed: count.describe('finished within the window, as are failed, cancelled and timeout'),
    failed: count,
    cancelled: count,
    timeout: count,
    avg_completion_ms: z.number().nullable().describe('creation to completion, over the tasks completed within the window'),
    window_seconds: count,
    timestamp: z.iso.datetime(),
  })
  .meta({ id: 'QueueStats' });
export type QueueStats = z.infer<typeof queueStatsJsonSchema>;

/**
 * Open work is read from the scope counters (migration 0008: the triggers' appended changes, summed;
 * never a count of task rows, so a backlog of millions costs the same as an empty queue); finished
 * work is counted over a recent window through the completed_at index, so the cost does not grow
 * with history, which v1's whole-table scan did.
 */
export async function readQueueStats(db: Db, windowSeconds = 900): Promise<QueueStats> {
  const { rows } = await sql<Omit<QueueStats, 'window_seconds' | 'timestamp'>>`
    WITH open AS (SELECT status, sum(tasks) AS n FROM dispatch_scope_counts GROUP BY status)
    SELECT
      coalesce((SELECT n FROM open WHERE status = 'waiting'), 0)::int AS waiting,
      coalesce((SELECT n FROM open WHERE status = 'pending'), 0)::int AS pending,
      coalesce((SELECT n FROM open WHERE status = 'assigned'), 0)::int AS assigned,
      coalesce((SELECT n FROM open WHERE status = 'running'), 0)::int AS running,
      coalesce(f.completed, 0)::int AS completed,
      coalesce(f.failed, 0)::int AS failed,
      coalesce(f.cancelled, 0)::int AS cancelled,
      coalesce(f.timeout, 0)::int AS timeout,
      f.avg_completion_ms
    FROM (
      SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
             count(*) FILTER (WHERE status = 'failed') AS failed,
             count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
             count(*) FILTER (WHERE status = 'timeout') AS timeout,
             round(avg(extract(epoch FROM completed_at - created_at) * 1000) FILTER (WHERE status = 'completed'))::float8
               AS avg_completion_ms
        FROM dispatch_tasks
       WHERE completed_at > now() - make_interval(secs => ${windowSeconds})
    ) f`.execute(db);
  const row = rows[0]!;
  return { ...row, window_seconds: windowSeconds, timestamp: new Date().toISOString() };
}
