import type pg from 'pg';
import { hasErrorCode, SQLSTATE } from './pg-errors.js';

/*
 * Session advisory locks. They belong to a connection, so each statement here runs on one
 * connection the caller holds (a pg client), not through the pool: that is the one place
 * Dispatch uses the pg client's query() rather than Kysely.
 */

/** Takes the lock if it is free; false at once if another session holds it. */
export async function tryAdvisoryLock(conn: pg.ClientBase, key: number): Promise<boolean> {
  const locked = await conn.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
  return locked.rows[0]?.ok === true;
}

export async function advisoryUnlock(conn: pg.ClientBase, key: number): Promise<void> {
  await conn.query('SELECT pg_advisory_unlock($1)', [key]);
}

/** Releases the lock if this session holds it (a session lock taken in a transaction outlives its rollback). */
export async function advisoryUnlockIfHeld(conn: pg.ClientBase, key: number): Promise<void> {
  await conn.query(
    `SELECT pg_advisory_unlock($1) FROM pg_locks
      WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = 0 AND objid = $1 AND objsubid = 1 AND granted`,
    [key],
  );
}

/** Waits for the lock at most `waitMs`; false when it was not granted by then. */
export async function advisoryLockWithin(conn: pg.ClientBase, key: number, waitMs: number): Promise<boolean> {
  await conn.query(`SET lock_timeout = ${Math.round(waitMs)}`);
  try {
    await conn.query('SELECT pg_advisory_lock($1)', [key]);
    return true;
  } catch (error) {
    if (!hasErrorCode(error, SQLSTATE.lockNotAvailable)) throw error;
    return false;
  } finally {
    await conn.query('RESET lock_timeout');
  }
}

/** True when some session of this database holds the lock exclusively (not a shared probe). */
export async function advisoryLockHeldExclusively(conn: pg.ClientBase, key: number): Promise<boolean> {
  const holder = await conn.query(
    `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = $1 AND objsubid = 1
        AND mode = 'ExclusiveLock' AND granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [key],
  );
  return (holder.rowCount ?? 0) > 0;
}

/**
 * Runs `work` on one connection holding the session advisory lock `key`, so only one replica at
 * a time does it. Returns undefined, without running it, when another session holds the lock.
 */
export async function whileHoldingLock<T>(pool: pg.Pool, key: number, work: (conn: pg.PoolClient) => Promise<T>): Promise<T | undefined> {
  const conn = await pool.connect();
  try {
    if (!(await tryAdvisoryLock(conn, key))) return undefined;
    try {
      return await work(conn);
    } finally {
      await advisoryUnlock(conn, key);
    }
  } finally {
    conn.release();
  }
}
