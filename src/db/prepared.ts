import { createHash } from 'node:crypto';
import { sql, type PostgresPool, type PostgresPoolClient, type RawBuilder } from 'kysely';
import type pg from 'pg';

/**
 * Statements kept prepared on their connection. An unnamed statement (what Kysely and pg send by
 * default) is parsed and planned anew on every call; for the hot, fixed-text statements (creating
 * and completing tasks in batches) that was most of the backend's time: a create batch of 5 cost
 * 280-330 us of backend CPU a task sent unnamed and 160-200 us named (bench/, session 24). A named
 * statement is parsed once per connection, and PostgreSQL plans it generically once a generic plan
 * costs no more than the custom ones (plan_cache_mode auto).
 *
 * A statement opts in by starting with `prepared('name')`: a comment that also names it in
 * pg_stat_activity and pg_stat_statements. It must have a fixed text (its values as parameters),
 * since every text is a statement of its own on every connection. Connections through a
 * transaction pooler do not prepare (the next transaction may run on another server connection):
 * openDatabase's `prepare` is false for them, and the marked statements run unnamed.
 */
export function prepared(name: string): RawBuilder<unknown> {
  return sql.raw(`/* ${MARK}${name} */ `);
}

const MARK = 'prepared: ';
const MARKED = /^\/\* prepared: ([a-z0-9_]+) \*\/ /;
/** Distinct marked texts named at most: past it (a marked text that is not fixed), statements run unnamed. */
const MAX_NAMES = 256;

const names = new Map<string, string>();

/** The statement's name on the server: its label and a digest of its text. undefined when unmarked. */
function nameOf(text: string): string | undefined {
  const known = names.get(text);
  if (known !== undefined) return known;
  const label = MARKED.exec(text)?.[1];
  if (label === undefined || names.size >= MAX_NAMES) return undefined;
  const name = `dispatch_${label}_${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
  names.set(text, name);
  return name;
}

/**
 * `pool` as Kysely sees it, sending the marked statements as named ones. A migration that changes
 * a table a prepared statement returns whole (`RETURNING *`) makes its next run fail ("cached plan
 * must not change result type", 0A000): the statement is then prepared again under a new name on
 * that connection, and run again if no transaction was open (inside one, the transaction has
 * failed, and its owner retries it as after any error).
 */
export function preparingPool(pool: pg.Pool): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      const client = await pool.connect();
      let wrapped = clients.get(client);
      if (wrapped === undefined) {
        wrapped = preparingClient(client);
        clients.set(client, wrapped);
      }
      return wrapped;
    },
    end: () => pool.end(),
  };
}

function preparingClient(client: pg.PoolClient): PostgresPoolClient {
  // Per server connection: the names it has prepared are pg's (client.connection), their generation ours.
  let generation = 0;
  let inTransaction = false;
  // Kysely hands over a fresh array of its own (PostgresConnection spreads the parameters).
  const send = (name: string, text: string, values: readonly unknown[]) =>
    client.query({ name: `${name}_${generation}`, text, values: values as unknown[] });
  const query = async (text: string, values: readonly unknown[]): Promise<pg.QueryResult> => {
    const word = /^\s*(\w+)/.exec(text)?.[1]?.toLowerCase();
    if (word === 'begin' || word === 'start') inTransaction = true;
    else if (word === 'commit' || word === 'rollback' || word === 'end') inTransaction = false;
    const name = values.length > 0 ? nameOf(text) : undefined;
    if (name === undefined) return await client.query(text, values as unknown[]);
    try {
      return await send(name, text, values);
    } catch (error) {
      if (!isStaleResultType(error)) throw error;
      generation += 1;
      if (inTransaction) throw error;
      return await send(name, text, values);
    }
  };
  // Kysely passes a cursor only when its dialect is given one; this one is not.
  return { query: query as unknown as PostgresPoolClient['query'], release: () => client.release() };
}

function isStaleResultType(error: unknown): boolean {
  return (error as { code?: string }).code === '0A000' && /cached plan must not change result type/.test(String((error as Error).message));
}
