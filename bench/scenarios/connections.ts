import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { DispatchConfigInput } from '../../src/config/config.js';
import { parseConfig } from '../../src/config/load.js';
import { APPLICATION_NAME, connectionBudget } from '../../src/db/connections.js';
import { openDatabase } from '../../src/db/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { createLogger } from '../../src/observability/logger.js';
import { auditAssignments } from '../../test/helpers/assignment-audit.js';
import { errorLogLines, freePort, spawnReplicas, type ReplicaProcess } from '../../test/helpers/replica-process.js';
import { createTasksOverHttp } from '../../test/helpers/simulated-agents.js';
import { sampleConnections } from '../lib/connections.js';
import { benchServerUrl, withBenchDatabase } from '../lib/database.js';
import { loadPhase } from '../lib/http-load.js';
import { withReplicas } from '../lib/replicas.js';
import { table } from '../lib/stats.js';
import { BENCH_SCOPE, registerAgents, waitAssigned } from '../lib/workload.js';
import { PROFILE, log } from './common.js';

/** The shipped pool settings (the benchmark's other scenarios give replicas a larger API pool). */
const SHIPPED = parseConfig({});
/** The sizing rule (docs/OPERATIONS.md) for 10 replicas under max_connections = 100: an API pool of 3. */
const TEN_REPLICA_POOLS: DispatchConfigInput = {
  database: { pool_size: 3, direct_pool_size: SHIPPED.database.direct_pool_size },
  worker: { concurrency: SHIPPED.worker.concurrency, pool_size: SHIPPED.worker.pool_size },
};
const SHIPPED_POOLS: DispatchConfigInput = {
  database: { pool_size: SHIPPED.database.pool_size, direct_pool_size: SHIPPED.database.direct_pool_size },
  worker: { concurrency: SHIPPED.worker.concurrency, pool_size: SHIPPED.worker.pool_size },
};
const POOLS = [APPLICATION_NAME.api, APPLICATION_NAME.direct, APPLICATION_NAME.jobs, APPLICATION_NAME.listen] as const;
const MAX_CONNECTIONS = 100;
const REPLICAS = 10;

/** The connections one replica holds with the shipped settings: idle, and at peak under HTTP load while it assigns. */
async function oneReplica(): Promise<string[][]> {
  return await withBenchDatabase('conn_one', async (database) => {
    return await withReplicas(database.url, { count: 1, config: { ...SHIPPED_POOLS, server: { rate_limit_per_minute: 1_000_000_000 } } }, async (replicas) => {
      const swarm = await registerAgents([replicas[0]!.apiUrl], PROFILE.agents, 10_000);
      const sampler = await sampleConnections(benchServerUrl(), database.name);
      try {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        const idle = await sampler.now();
        const load = await loadPhase([`${replicas[0]!.apiUrl}/api/v1/tasks`], {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-agent-id': 'bench-conn' },
          body: JSON.stringify({ title: 'connections', scope: BENCH_SCOPE, priority: 3 }),
        }, { connections: 50, warmupS: PROFILE.httpWarmupS, durationS: PROFILE.httpSeconds });
        await waitAssigned(database.handle.db, 120_000);
        const peak = sampler.peak();
        log(`  one replica: idle ${JSON.stringify(idle)}, peak ${JSON.stringify(peak)} (${Math.round(load.requestsPerSecond)} creates/s)`);
        const budget = connectionBudget(SHIPPED);
        const max = { [APPLICATION_NAME.api]: budget.api, [APPLICATION_NAME.direct]: budget.direct, [APPLICATION_NAME.jobs]: budget.jobs, [APPLICATION_NAME.listen]: budget.listen };
        return [
          ...POOLS.map((app) => [app, String(max[app]), String(idle[app] ?? 0), String(peak[app] ?? 0)]),
          ['total', String(budget.total), String(POOLS.reduce((s, a) => s + (idle[a] ?? 0), 0)), String(peak.total ?? 0)],
        ];
      } finally {
        await sampler.stop();
        await swarm.stop();
      }
    });
  });
}

/** A server with max_connections = 100: the benchmark's own if it has that setting, else a scratch one. */
async function withSmallServer<T>(fn: (serverUrl: string) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: benchServerUrl() });
  await client.connect();
  const { rows } = await client.query<{ max_connections: string }>('SHOW max_connections');
  await client.end();
  if (Number(rows[0]!.max_connections) === MAX_CONNECTIONS) return await fn(benchServerUrl());
  let server: EmbeddedDatabase | undefined;
  try {
    server = await startEmbeddedPostgres({
      baseDir: mkdtempSync(join(tmpdir(), 'dispatch-bench-pg-')),
      port: await freePort(),
      logger: createLogger({ level: 'warn' }),
      settings: { max_connections: String(MAX_CONNECTIONS) },
    });
    return await fn(server.url);
  } finally {
    await server?.destroy();
  }
}

interface TenReplicas {
  server: string;
  created: number;
  assigned: number;
  peak: number;
  peakPerPool: Record<string, number>;
  doubleAssignments: number;
  limitBreaches: number;
  errorLines: string[];
}

/** 10 replicas sized by the rule (API pool 3), one server with max_connections = 100: serve and assign everything. */
async function tenReplicas(): Promise<TenReplicas> {
  return await withSmallServer(async (serverUrl) => {
    const name = `dispatch_bench_ten_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    const sampler = await sampleConnections(serverUrl, null);
    const check = openDatabase(url.toString(), 2, 'dispatch-bench');
    try {
      // Two at a time: ten Node processes compiling at once on two shared cores miss any timeout.
      const replicas: ReplicaProcess[] = [];
      try {
        for (let i = 0; i < REPLICAS; i += 2) {
          replicas.push(...(await spawnReplicas(2, { databaseUrl: url.toString(), name: `ten-${i / 2 + 1}`, config: TEN_REPLICA_POOLS, readyTimeoutMs: 180_000 })));
        }
      } catch (error) {
        await Promise.all(replicas.map((r) => r.stop(5_000)));
        throw error;
      }
      try {
        const urls = replicas.map((r) => r.apiUrl);
        const swarm = await registerAgents(urls, PROFILE.agents, 1_000);
        const count = PROFILE.backlog / 10;
        try {
          // Through every replica at once; each replica's assigner races the others for the work.
          await createTasksOverHttp(urls, { count, concurrency: 40, scope: () => BENCH_SCOPE, requester: 'bench-ten' });
          await waitAssigned(check.db, 300_000);
          const { rows } = await check.pool.query<{ created: number; assigned: number }>(
            `SELECT count(*)::int AS created, count(assigned_at)::int AS assigned FROM dispatch_tasks WHERE requester = 'bench-ten'`,
          );
          const audit = await auditAssignments(check.db, SHIPPED.assignment.max_concurrent_per_agent);
          const peak = sampler.peak();
          return {
            server: serverUrl === benchServerUrl() ? 'the benchmark server (max_connections 100)' : 'a scratch server (max_connections 100)',
            created: rows[0]!.created,
            assigned: rows[0]!.assigned,
            peak: peak.total ?? 0,
            peakPerPool: Object.fromEntries(POOLS.map((p) => [p, peak[p] ?? 0])),
            doubleAssignments: audit.doubleAssignments.length,
            limitBreaches: audit.limitBreaches.length,
            errorLines: replicas.flatMap((r) => errorLogLines(r.output())),
          };
        } finally {
          await swarm.stop();
        }
      } finally {
        await Promise.all(replicas.map((r) => r.stop(15_000)));
      }
    } finally {
      await sampler.stop();
      await check.close();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
}

/** PostgreSQL connections per replica, and 10 replicas on one server that allows 100. */
export async function connections(report: string[]): Promise<void> {
  log('connections: one replica, shipped pool settings, idle and under HTTP load while assigning');
  const one = await oneReplica();
  log(`connections: ${REPLICAS} replicas on one PostgreSQL with max_connections = ${MAX_CONNECTIONS}`);
  const ten = await tenReplicas();
  log(`  ${ten.assigned}/${ten.created} assigned, peak ${ten.peak} connections, ${ten.errorLines.length} error log lines`);
  report.push(
    '### PostgreSQL connections of one replica (shipped settings)',
    table(['pool (application_name)', 'at most (config)', 'idle', 'peak under HTTP load while assigning'], one),
    `### ${REPLICAS} replicas on one PostgreSQL with max_connections = ${MAX_CONNECTIONS}`,
    table(
      ['server', 'tasks created (REST, all replicas)', 'assigned', 'peak connections (whole server)', 'peak per pool', 'double assignments', 'limit breaches', 'error log lines'],
      [[ten.server, String(ten.created), String(ten.assigned), String(ten.peak), POOLS.map((p) => `${p} ${ten.peakPerPool[p]}`).join(', '), String(ten.doubleAssignments), String(ten.limitBreaches), String(ten.errorLines.length)]],
    ),
  );
  const failed = ten.assigned !== ten.created || ten.doubleAssignments > 0 || ten.limitBreaches > 0 || ten.errorLines.length > 0;
  if (failed) {
    console.error(`connections: ${REPLICAS} replicas did not serve and assign cleanly:\n${ten.errorLines.slice(0, 10).join('\n')}`);
    process.exitCode = 1;
  }
}
