import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';

/**
 * Benchmark-only instrumentation for the hop breakdown (bench/scenarios/hops.ts): a row trigger
 * that stamps clock_timestamp() into bench_hops when a task turns from pending to assigned (after
 * the claim, the scoring and the write). The product's code and SQL are
 * untouched; the triggers live only in the scenario's throwaway database. Commit times come from
 * track_commit_timestamp (the scenario's server has it on).
 */
export async function instrumentHops(db: Db): Promise<void> {
  await sql`CREATE TABLE bench_hops (kind text NOT NULL, at timestamptz NOT NULL, ref text)`.execute(db);
  await sql.raw(`
    CREATE FUNCTION bench_hop_claim() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO bench_hops VALUES ('claimed', clock_timestamp(), NEW.id::text);
      RETURN NULL;
    END $$;
    CREATE TRIGGER bench_hop_claim AFTER UPDATE OF status ON dispatch_tasks
      FOR EACH ROW WHEN (OLD.status = 'pending' AND NEW.status = 'assigned') EXECUTE FUNCTION bench_hop_claim();
  `).execute(db);
}

/** Per task: the database's stamps of each hop, in epoch milliseconds. */
export interface TaskStamps {
  id: string;
  /** Insert transaction start (created_at). */
  created: number;
  /** Insert transaction commit (commit timestamp of its `created` event). */
  insertCommit: number;
  /** Batch transaction start (assigned_at). */
  batchStart: number;
  /** The batch's UPDATE turned the task's row assigned (an AFTER ROW trigger: after the claim, the scoring and the write). */
  claimed: number;
  /** Batch transaction commit (commit timestamp of its `assigned` event). */
  batchCommit: number;
}

export async function taskStamps(db: Db, requester: string): Promise<TaskStamps[]> {
  const { rows } = await sql<{ id: string; created: number; insert_commit: number; batch_start: number; claimed: number; batch_commit: number }>`
    SELECT t.id,
           extract(epoch FROM t.created_at) * 1000 AS created,
           extract(epoch FROM pg_xact_commit_timestamp(c.xmin)) * 1000 AS insert_commit,
           extract(epoch FROM t.assigned_at) * 1000 AS batch_start,
           extract(epoch FROM h.at) * 1000 AS claimed,
           extract(epoch FROM pg_xact_commit_timestamp(a.xmin)) * 1000 AS batch_commit
      FROM dispatch_tasks t
      JOIN dispatch_task_events c ON c.task_id = t.id AND c.event = 'created'
      JOIN dispatch_task_events a ON a.task_id = t.id AND a.event = 'assigned'
      JOIN bench_hops h ON h.kind = 'claimed' AND h.ref = t.id::text
     WHERE t.requester = ${requester}
     ORDER BY t.created_at`.execute(db);
  return rows.map((r) => ({
    id: r.id,
    created: Number(r.created),
    insertCommit: Number(r.insert_commit),
    batchStart: Number(r.batch_start),
    claimed: Number(r.claimed),
    batchCommit: Number(r.batch_commit),
  }));
}
