import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { piggybackedTransaction } from '../../src/db/piggybacked-transaction.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  await sql`CREATE TABLE piggyback_notes (id int PRIMARY KEY, note text NOT NULL)`.execute(database.handle.db);
});
afterAll(async () => {
  await database?.drop();
});

const insert = (id: number, note: string) => sql<{ id: number }>`INSERT INTO piggyback_notes VALUES (${sql.lit(id)}, ${sql.lit(note)}) RETURNING id`;
const notes = async () => (await sql<{ id: number }>`SELECT id FROM piggyback_notes ORDER BY id`.execute(database.handle.db)).rows.map((r) => r.id);

/** Statements sent on the connection, and whether it is left inside a transaction. */
async function onWatchedConnection<T>(fn: (conn: import('pg').PoolClient, sent: string[]) => Promise<T>): Promise<{ result?: T; error?: unknown; sent: string[]; idle: boolean }> {
  const conn = await database.handle.pool.connect();
  const sent: string[] = [];
  const query = conn.query.bind(conn);
  (conn as unknown as { query: (text: string, values?: unknown[]) => Promise<unknown> }).query = (text, values) => {
    sent.push(text.trim());
    return query(text, values);
  };
  try {
    const result = await fn(conn, sent);
    return { result, sent, idle: await outsideTransaction(query) };
  } catch (error) {
    return { error, sent, idle: await outsideTransaction(query) };
  } finally {
    (conn as unknown as { query: typeof query }).query = query;
    conn.release();
  }
}

/** now() moves between two autocommitted statements only outside a transaction block. */
async function outsideTransaction(query: (text: string) => Promise<{ rows: { s: string }[] }>): Promise<boolean> {
  const first = (await query('SELECT statement_timestamp()::text AS s, transaction_timestamp()::text AS t')).rows[0] as unknown as { s: string; t: string };
  return first.s === first.t;
}

describe('a transaction whose BEGIN and COMMIT travel with its statements', () => {
  it('commits in two round trips: BEGIN with the first statement, COMMIT with the last', async () => {
    const run = await onWatchedConnection((conn) =>
      piggybackedTransaction(conn, insert(1, 'first').compile(database.handle.db), async ({ firstRows, tx, commitWith }) => {
        expect(firstRows).toEqual([{ id: 1 }]);
        await sql`INSERT INTO piggyback_notes VALUES (2, 'middle')`.execute(tx);
        return await commitWith(insert(3, 'last').compile(database.handle.db));
      }),
    );
    expect(run.error).toBeUndefined();
    expect(run.result).toEqual([{ id: 3 }]);
    expect(run.sent.filter((s) => /^(BEGIN|COMMIT|ROLLBACK)$/i.test(s))).toEqual([]);
    expect(run.sent[0]).toMatch(/^BEGIN; INSERT/);
    expect(run.sent.at(-1)).toMatch(/; COMMIT$/);
    expect(run.idle).toBe(true);
    expect(await notes()).toEqual([1, 2, 3]);
  });

  it('commits on its own when the body never sends a last statement', async () => {
    const run = await onWatchedConnection((conn) => piggybackedTransaction(conn, insert(4, 'alone').compile(database.handle.db), async () => 'done'));
    expect(run.result).toBe('done');
    expect(run.sent.at(-1)).toBe('COMMIT');
    expect(await notes()).toContain(4);
  });

  it('rolls everything back when a statement fails, the last one included, and leaves the connection usable', async () => {
    const failing = await onWatchedConnection((conn) =>
      piggybackedTransaction(conn, insert(5, 'rolled back').compile(database.handle.db), async ({ commitWith }) => {
        // The primary key refuses a second row 1: the write fails, and its COMMIT never runs.
        return await commitWith(insert(1, 'duplicate').compile(database.handle.db));
      }),
    );
    expect(String(failing.error)).toMatch(/duplicate key/);
    expect(failing.idle).toBe(true);
    expect(await notes()).not.toContain(5);

    const thrown = await onWatchedConnection((conn) =>
      piggybackedTransaction(conn, insert(6, 'rolled back').compile(database.handle.db), async () => {
        throw new Error('the body gave up');
      }),
    );
    expect(String(thrown.error)).toMatch(/the body gave up/);
    expect(thrown.sent.at(-1)).toBe('ROLLBACK');
    expect(thrown.idle).toBe(true);
    expect(await notes()).not.toContain(6);
  });

  it('refuses a statement with parameters, which cannot share a message with BEGIN', async () => {
    const run = await onWatchedConnection((conn) =>
      piggybackedTransaction(conn, sql`INSERT INTO piggyback_notes VALUES (${7}, 'bound')`.compile(database.handle.db), async () => 'never'),
    );
    expect(String(run.error)).toMatch(/literals/);
    expect(run.idle).toBe(true);
    expect(await notes()).not.toContain(7);
  });
});
