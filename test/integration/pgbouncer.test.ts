import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditAssignments } from '../helpers/assignment-audit.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { PGBOUNCER_BINARY, startPgBouncer, type PgBouncer } from '../helpers/pgbouncer.js';
import { errorLogLines, spawnReplicas, type ReplicaProcess } from '../helpers/replica-process.js';
import { createTasksOverHttp, overlappingSwarm, SimulatedAgents } from '../helpers/simulated-agents.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Two Dispatch processes whose API pool goes through a real PgBouncer in transaction pooling
 * mode (3 server connections shared by every API connection of both), with only graphile-worker
 * and the session locks on database.direct_url. Session state leaking through the pooler (a
 * startup option, a session advisory lock, LISTEN, a named prepared statement) would show as a
 * refused connection, an error log line, a stuck or doubled assignment.
 */

const TASKS = 600;
const AGENTS = 12;
const LIMIT = 3;
const SCOPES = ['alpha', 'beta', 'gamma'] as const;

// A machine without the pgbouncer package skips this file (CI installs it, so it always runs there).
const installed = existsSync(PGBOUNCER_BINARY);
if (!installed) console.warn(`${PGBOUNCER_BINARY} not found: skipping the PgBouncer test (apt-get install pgbouncer)`);

let database: TestDatabase;
let bouncer: PgBouncer;
let replicas: ReplicaProcess[] = [];

beforeAll(async () => {
  if (!installed) return;
  database = await createTestDatabase();
  bouncer = await startPgBouncer(inject('serverUrl'), 3);
  replicas = await spawnReplicas(2, {
    databaseUrl: bouncer.url(database.name),
    name: 'pgbouncer',
    config: {
      database: { direct_url: database.url, pool_size: 6 },
      worker: { concurrency: 2, heartbeat_interval_ms: 1_000 },
      assignment: { max_concurrent_per_agent: LIMIT, agent_heartbeat_timeout_ms: 120_000 },
    },
  });
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop(5_000)));
  await bouncer?.stop();
  await database?.drop();
});

async function remainingTasks(): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status <> 'completed'`.execute(database.handle.db);
  return rows[0]!.n;
}

describe.skipIf(!installed)('the API pool behind PgBouncer in transaction mode', () => {
  it('serves creates, reads and completions through the pooler and assigns every task exactly once', async () => {
    const urls = replicas.map((r) => r.apiUrl);
    let allDone = false;
    const agents = await SimulatedAgents.start(overlappingSwarm(SCOPES, { urls, count: AGENTS, namePrefix: 'bouncer-agent', until: () => allDone }));
    await createTasksOverHttp(urls, { count: TASKS, concurrency: 12, scope: (i) => SCOPES[i % 3]!, priority: (i) => 1 + (i % 5) });
    await waitFor(async () => (await remainingTasks()) === 0, { timeoutMs: 120_000, intervalMs: 250, what: 'every task completed' });
    allDone = true;
    const stats = await agents.stop();

    const audit = await auditAssignments(database.handle.db, LIMIT);
    expect(audit.doubleAssignments).toEqual([]);
    expect(audit.limitBreaches).toEqual([]);
    expect(audit.assignments).toBe(TASKS);
    expect(stats.completed).toBe(TASKS);
    expect(stats.httpErrors).toBe(0);
    for (const replica of replicas) expect(errorLogLines(replica.output())).toEqual([]);

    // The API's transactions really went through PgBouncer, on no more than its 3 server connections.
    const pools = await bouncer.admin<{ database: string; sv_active: number; sv_idle: number; sv_used: number }>('SHOW POOLS');
    const pool = pools.find((p) => p.database === database.name);
    expect(pool).toBeDefined();
    const statsRows = await bouncer.admin<{ database: string; total_xact_count: string }>('SHOW STATS');
    expect(Number(statsRows.find((s) => s.database === database.name)?.total_xact_count ?? 0)).toBeGreaterThan(TASKS);
    const servers = await bouncer.admin<{ database: string }>('SHOW SERVERS');
    expect(servers.filter((s) => s.database === database.name).length).toBeLessThanOrEqual(3);

    // Only the session-holding pools connect directly: the API pool's connections all come from PgBouncer.
    const { rows } = await sql<{ app: string; n: number }>`
      SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND application_name IN ('dispatch-direct', 'dispatch-worker')
       GROUP BY 1 ORDER BY 1`.execute(database.handle.db);
    expect(rows.map((r) => r.app)).toEqual(['dispatch-direct', 'dispatch-worker']);
  }, 180_000);
});
