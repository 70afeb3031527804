import { sql } from 'kysely';
import type { Db } from '../db/database.js';

export interface QueueStats {
  pending: number;
  assigned: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  timeout: number;
  avg_completion_ms: number | null;
  window_seconds: number;
  timestamp: string;
}

/**
 * Open work is counted exactly (partial indexes keep that cheap however large the table); finished
 * work is counted over a recent window through the completed_at index, so the cost does not grow
 * with history, which v1's whole-table scan did.
 */
export async function readQueueStats(db: Db, windowSeconds = 900): Promise<QueueStats> {
  const { rows } = await sql<Omit<QueueStats, 'window_seconds' | 'timestamp'>>`
    SELECT
      (SELECT count(*) FROM dispatch_tasks WHERE status = 'pending')::int AS pending,
      (SELECT count(*) FROM dispatch_tasks WHERE status = 'assigned')::int AS assigned,
      (SELECT count(*) FROM dispatch_tasks WHERE status = 'running')::int AS running,
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
