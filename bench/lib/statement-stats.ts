import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';

/**
 * Where PostgreSQL's time goes, statement by statement, from pg_stat_statements on a benchmark's
 * own server (withCommitStampedServer loads it). A statement's time is the time its backend spent
 * on it, lock waits included: a statement whose mean is far above what its rows cost is waiting
 * for another transaction's locks.
 */
export interface StatementCost {
  /** The statement's text, whitespace collapsed, cut short. */
  statement: string;
  calls: number;
  totalMs: number;
  meanMs: number;
  rowsPerCall: number;
  /** Times it was planned (an unnamed statement each call; a prepared one when its plan is custom or was invalidated). */
  plans: number;
  planMs: number;
}

/** Forgets what was counted so far: what comes next is measured alone. */
export async function resetStatementStats(db: Db): Promise<void> {
  await sql`SELECT pg_stat_statements_reset()`.execute(db);
}

/** The `limit` top-level statements that took the most time running since the last reset, with their planning. */
export async function costliestStatements(db: Db, limit: number): Promise<StatementCost[]> {
  const { rows } = await sql<{ statement: string; calls: string; total_ms: number; mean_ms: number; rows: string; plans: string; plan_ms: number }>`
    SELECT left(btrim(regexp_replace(query, '\\s+', ' ', 'g')), 90) AS statement, calls, total_exec_time AS total_ms,
           mean_exec_time AS mean_ms, rows, plans, total_plan_time AS plan_ms
      FROM pg_stat_statements
     WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
     ORDER BY total_exec_time DESC
     LIMIT ${limit}`.execute(db);
  return rows.map((r) => ({
    statement: r.statement,
    calls: Number(r.calls),
    totalMs: r.total_ms,
    meanMs: r.mean_ms,
    rowsPerCall: Number(r.rows) / Number(r.calls),
    plans: Number(r.plans),
    planMs: r.plan_ms,
  }));
}
