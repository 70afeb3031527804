import { sql } from 'kysely';
import type { DispatchConfig } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { openDatabase, type DatabaseHandle } from './database.js';

/**
 * The three pools one replica opens, each with an application_name of its own so that
 * pg_stat_activity tells them apart:
 *
 * - api (`dispatch`): request handling and the loops that run plain transactions. When
 *   database.direct_url is set, database.url may be a transaction pooler (PgBouncer): nothing
 *   on this pool keeps session state (no LISTEN, no session advisory lock, no named prepared
 *   statement, settings only with set_config(…, true) inside a transaction). Without a pooler
 *   it keeps its hot statements prepared (src/db/prepared.ts).
 * - direct (`dispatch-direct`): session advisory locks (the active assigner, queue maintenance,
 *   retention), migrations, the replica heartbeat.
 * - jobs (`dispatch-worker`): graphile-worker, which LISTENs and uses prepared statements.
 *
 * At most database.pool_size + database.direct_pool_size + worker.pool_size connections, all
 * opened on demand; see docs/OPERATIONS.md ("Connections") for the sizing rule.
 */
export interface ReplicaConnections {
  api: DatabaseHandle;
  direct: DatabaseHandle;
  jobs: DatabaseHandle;
  /** True when the API pool goes through a pooler (database.direct_url is set). */
  pooled: boolean;
  close(): Promise<void>;
}

export const APPLICATION_NAME = { api: 'dispatch', direct: 'dispatch-direct', jobs: 'dispatch-worker', listen: 'dispatch-listen' } as const;

/** The most connections one replica opens to PostgreSQL with `config`. */
export function connectionBudget(config: DispatchConfig): { api: number; direct: number; jobs: number; listen: number; total: number } {
  const api = config.database.pool_size;
  const direct = config.database.direct_pool_size;
  const jobs = config.worker.pool_size;
  // The replica's one LISTEN connection (src/db/listener.ts: due times and assignment streams).
  const listen = 1;
  return { api, direct, jobs, listen, total: api + direct + jobs + listen };
}

export function openReplicaConnections(config: DispatchConfig, databaseUrl: string): ReplicaConnections {
  // Read by the database's own rules (migration 0003); sent as a startup option, which a
  // transaction pooler does not pass on: see warnIfSettingsLost.
  // The reassignment budget (migration 0003) and the aging that orders the claim (migration 0012).
  const sessionSettings = {
    'dispatch.reassign_budget': String(config.lifecycle.reassign_budget),
    'dispatch.aging_ms': String(config.assignment.aging_ms),
  };
  const directUrl = config.database.direct_url || databaseUrl;
  const pooled = directUrl !== databaseUrl;
  const idleTimeoutMs = config.database.idle_timeout_ms;
  const api = openDatabase(databaseUrl, config.database.pool_size, APPLICATION_NAME.api, pooled ? {} : sessionSettings, { prepare: !pooled, idleTimeoutMs });
  const direct = openDatabase(directUrl, config.database.direct_pool_size, APPLICATION_NAME.direct, sessionSettings, { prepare: true, idleTimeoutMs });
  const jobs = openDatabase(directUrl, config.worker.pool_size, APPLICATION_NAME.jobs, sessionSettings, { idleTimeoutMs });
  return {
    api,
    direct,
    jobs,
    pooled,
    async close() {
      await api.close();
      await direct.close();
      await jobs.close();
    },
  };
}

/**
 * Through a pooler the API's connections lack the startup settings: the rule returning a stopped
 * agent's tasks then uses its built-in reassign budget (3). Say so once, with the fix, when the
 * configured budget differs from what those connections see.
 */
export async function warnIfSettingsLost(connections: ReplicaConnections, config: DispatchConfig, logger: Logger): Promise<void> {
  if (!connections.pooled) return;
  const { rows } = await sql<{ budget: string | null }>`SELECT current_setting('dispatch.reassign_budget', true) AS budget`.execute(connections.api.db);
  const seen = rows[0]?.budget ? Number(rows[0].budget) : 3;
  if (seen !== config.lifecycle.reassign_budget) {
    logger.warn(
      { configured: config.lifecycle.reassign_budget, seen },
      'the API connections (through database.url, a pooler) do not carry lifecycle.reassign_budget: set dispatch.reassign_budget in the pooler (PgBouncer: connect_query) or with ALTER DATABASE … SET',
    );
  }
}
