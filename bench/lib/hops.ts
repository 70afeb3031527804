import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import { JOB } from '../../src/db/contract.js';

/**
 * Benchmark-only instrumentation for the hop breakdown (bench/scenarios/hops.ts): row triggers
 * that stamp clock_timestamp() into bench_hops when graphile-worker adds, locks and finishes an
 * assignment job, and when a task turns from pending to assigned. The product's code and SQL are
 * untouched; the triggers live only in the scenario's throwaway database. Commit times come from
 * track_commit_timestamp (the scenario's server has it on).
 */
export async function instrumentHops(db: Db): Promise<void> {
  await sql`CREATE TABLE bench_hops (kind text NOT NULL, at timestamptz NOT NULL, ref text)`.execute(db);
  await sql.raw(`
    CREATE FUNCTION bench_hop_job() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      job graphile_worker._private_jobs := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    BEGIN
      IF job.task_id <> (SELECT id FROM graphile_worker._private_tasks WHERE identifier = '${JOB.assignmentRun}') THEN RETURN NULL; END IF;
      IF TG_OP = 'INSERT' THEN
        INSERT INTO bench_hops VALUES ('job_added', clock_timestamp(), job.id::text);
      ELSIF TG_OP = 'UPDATE' AND NEW.locked_at IS NOT NULL AND OLD.locked_at IS NULL THEN
        INSERT INTO bench_hops VALUES ('job_locked', clock_timestamp(), job.id::text);
      ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO bench_hops VALUES ('job_done', clock_timestamp(), job.id::text);
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER bench_hop_job AFTER INSERT OR UPDATE OR DELETE ON graphile_worker._private_jobs
      FOR EACH ROW EXECUTE FUNCTION bench_hop_job();
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

/** The job stamps (job_added, job_locked, job_done), in epoch milliseconds, oldest first. */
export async function jobStamps(db: Db): Promise<{ kind: string; at: number }[]> {
  const { rows } = await sql<{ kind: string; at: number }>`
    SELECT kind, extract(epoch FROM at) * 1000 AS at FROM bench_hops WHERE kind LIKE 'job_%' ORDER BY at`.execute(db);
  return rows.map((r) => ({ kind: r.kind, at: Number(r.at) }));
}
