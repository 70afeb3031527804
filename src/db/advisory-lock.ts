import type pg from 'pg';

/**
 * Runs `work` on one connection holding the session advisory lock `key`, so only one replica at
 * a time does it. Returns undefined, without running it, when another session holds the lock.
 */
export async function whileHoldingLock<T>(pool: pg.Pool, key: number, work: (conn: pg.PoolClient) => Promise<T>): Promise<T | undefined> {
  const conn = await pool.connect();
  try {
    const locked = await conn.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
    if (!locked.rows[0]?.ok) return undefined;
    try {
      return await work(conn);
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1)', [key]);
    }
  } finally {
    conn.release();
  }
}
