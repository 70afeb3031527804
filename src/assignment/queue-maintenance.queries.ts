import type pg from 'pg';

/*
 * Run on the connection that holds the maintenance advisory lock (VACUUM cannot run inside a
 * transaction, so not through Kysely's pool either).
 */

/** The tables among `tables` (schema-qualified) holding more than `threshold` dead tuples, quoted for SQL. */
export async function findTablesWithDeadTuples(conn: pg.ClientBase, tables: string[], threshold: number): Promise<{ name: string; dead: number }[]> {
  const { rows } = await conn.query<{ name: string; dead: number }>(
    `SELECT format('%I.%I', schemaname, relname) AS name, n_dead_tup::int AS dead
       FROM pg_stat_user_tables
      WHERE format('%s.%s', schemaname, relname) = ANY ($1::text[]) AND n_dead_tup > $2`,
    [tables, threshold],
  );
  return rows;
}

/** `quotedName` as findTablesWithDeadTuples returns it. */
export async function vacuumTable(conn: pg.ClientBase, quotedName: string): Promise<void> {
  // SKIP_LOCKED: a table someone holds exclusively (a migration) is left for next time.
  await conn.query(`VACUUM (SKIP_LOCKED) ${quotedName}`);
}
