import type { CompiledQuery, Transaction } from 'kysely';
import type pg from 'pg';
import { onConnection } from './database.js';
import type { DB } from './generated/database.js';

export interface PiggybackedTransaction<First> {
  /** The first statement's rows (it ran right after BEGIN). */
  firstRows: First[];
  /** The rest of the transaction's statements, on the same connection. */
  tx: Transaction<DB>;
  /**
   * Runs `last` and commits, in one round trip; the transaction is over once it resolves. A
   * transaction that never calls it is committed after its body, on a round trip of its own.
   */
  commitWith<Last>(last: CompiledQuery<Last>): Promise<Last[]>;
}

/**
 * A transaction on `conn` whose BEGIN travels with its first statement, and whose COMMIT with its
 * last: each pair is sent as one query (PostgreSQL's simple protocol runs several statements in
 * one message, but only statements without parameters, so both must carry their values as
 * literals). Two round trips fewer than a BEGIN and a COMMIT of their own, and each round trip
 * of a busy replica also waits for its event loop and for a core: at half the round trip
 * benchmark's rate they took 1.5 and 3.0 ms of an assignment batch's 25 (docs/BENCHMARKS.md,
 * session 19, where the batch's slowest 1% got shorter in five pairs of runs out of five).
 *
 * On any failure the transaction is rolled back and the error passed on. A rollback that fails
 * too (the connection is lost) is not reported over it: the caller, who holds the connection,
 * releases it with the error, so that the pool discards it.
 */
export async function piggybackedTransaction<First, T>(
  conn: pg.ClientBase,
  first: CompiledQuery<First>,
  body: (transaction: PiggybackedTransaction<First>) => Promise<T>,
): Promise<T> {
  // From BEGIN on: the query that carries it may fail after BEGIN took effect.
  let open = true;
  try {
    const firstRows = resultOf(await conn.query(`BEGIN; ${withoutParameters(first)}`), 1).rows as First[];
    const result = await body({
      firstRows,
      // A Kysely on the connection, typed as the transaction its statements run in (BEGIN was sent above).
      tx: onConnection(conn) as unknown as Transaction<DB>,
      commitWith: async <Last>(last: CompiledQuery<Last>) => {
        const rows = resultOf(await conn.query(`${withoutParameters(last)}; COMMIT`), 0).rows as Last[];
        open = false;
        return rows;
      },
    });
    if (open) {
      await conn.query('COMMIT');
      open = false;
    }
    return result;
  } catch (error) {
    if (open) await conn.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

function withoutParameters(query: CompiledQuery<unknown>): string {
  if (query.parameters.length > 0) throw new Error('a statement sent beside BEGIN or COMMIT must carry its values as literals');
  return query.sql;
}

/** The result of the `index`-th statement of a multi-statement query. */
function resultOf(results: pg.QueryResult | pg.QueryResult[], index: number): pg.QueryResult {
  const all = results as unknown;
  if (!Array.isArray(all)) throw new Error('expected one result per statement');
  return all[index] as pg.QueryResult;
}
