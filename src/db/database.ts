import { Kysely, PostgresDialect, type Selectable } from 'kysely';
import pg from 'pg';
import { preparingPool } from './prepared.js';
import type { DB, DispatchAgents, DispatchSchedules, DispatchTaskEvents, DispatchTasks } from './generated/database.js';

// Return int8 (count(*), bigint ids) as JS numbers where they fit; every bigint we read is a
// count or an event sequence far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export type Db = Kysely<DB>;

export type TaskRow = Selectable<DispatchTasks>;
export type TaskEventRow = Selectable<DispatchTaskEvents>;
/**
 * An agent as the agent queries return it: active_tasks is its live load
 * (dispatch_agent_live_load, migration 0022), and the fold's bookkeeping is left out.
 */
export type AgentRow = Omit<Selectable<DispatchAgents>, 'released_folded'>;
export type ScheduleRow = Selectable<DispatchSchedules>;

export interface DatabaseHandle {
  pool: pg.Pool;
  db: Db;
  close(): Promise<void>;
}

/** Session settings as libpq's `options` (`-c key=value ...`). */
function settingsOption(sessionSettings: Record<string, string>): string {
  return Object.entries(sessionSettings)
    .map(([key, value]) => `-c ${key}=${value}`)
    .join(' ');
}

/** One connection outside any pool, for a session that must stay put (LISTEN). */
export function newClient(connectionString: string, applicationName: string, sessionSettings: Record<string, string> = {}): pg.Client {
  const options = settingsOption(sessionSettings);
  return new pg.Client({ connectionString, application_name: applicationName, connectionTimeoutMillis: 10_000, ...(options ? { options } : {}) });
}

/**
 * A Kysely view of one connection the caller holds (and releases): its statements and
 * transactions run in that session, beside the session's advisory locks.
 */
export function onConnection(client: pg.ClientBase): Db {
  const held = { query: client.query.bind(client), release: () => {} };
  const pool = { connect: async () => held as unknown as pg.PoolClient, end: async () => {} };
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

/** One pool and its Kysely view; the owner closes both. */
export function openDatabase(
  connectionString: string,
  poolSize: number,
  applicationName = 'dispatch',
  /** Settings the database's own rules read (e.g. dispatch.reassign_budget), set on every connection. */
  sessionSettings: Record<string, string> = {},
  /**
   * `prepare`: keep the statements marked `prepared()` prepared on each connection
   * (src/db/prepared.ts), not through a transaction pooler. `idleTimeoutMs`: close a connection
   * idle this long, 0 never (database.idle_timeout_ms); node-postgres' 10 s when not given.
   */
  { prepare = false, idleTimeoutMs }: { prepare?: boolean; idleTimeoutMs?: number } = {},
): DatabaseHandle {
  const options = settingsOption(sessionSettings);
  const pool = new pg.Pool({
    connectionString,
    max: poolSize,
    application_name: applicationName,
    // A request waiting for a connection while the server is down or the pool is exhausted
    // fails (503) after this long instead of hanging.
    connectionTimeoutMillis: 10_000,
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMillis: idleTimeoutMs } : {}),
    ...(options ? { options } : {}),
  });
  // An idle client losing its server (restart, failover) must not crash the process; the pool
  // drops it and the next query opens a fresh connection.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: prepare ? preparingPool(pool) : pool }) });
  return {
    pool,
    db,
    async close() {
      await db.destroy();
      // Kysely ends the pool only once it has run a query through it: a pool used only directly
      // (graphile-worker's) is ended here, or its idle connections would outlive the replica's stop.
      if (!pool.ending) await pool.end();
    },
  };
}
