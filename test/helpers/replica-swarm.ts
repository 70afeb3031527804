import { afterAll, beforeAll } from 'vitest';
import type { DispatchConfigInput } from '../../src/config/config.js';
import type { Db } from '../../src/db/database.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { spawnReplicas, type ReplicaProcess } from './replica-process.js';
import { SimulatedAgents, type SimulatedAgentsOptions } from './simulated-agents.js';

export interface ReplicaSwarmOptions {
  /** Prefix of the replicas' names (in their logs and replica ids). */
  name: string;
  replicas: number;
  /** assignment.max_concurrent_per_agent: the limit the audits check. */
  agentLimit: number;
  /** Sections merged over the swarm's settings, key by key. */
  config?: DispatchConfigInput;
  readyTimeoutMs?: number;
  setupTimeoutMs?: number;
}

export interface ReplicaSwarm {
  readonly database: TestDatabase;
  readonly db: Db;
  readonly replicas: ReplicaProcess[];
  /** Simulated agents; whatever a test leaves running is stopped after the file's last test. */
  startAgents(options: SimulatedAgentsOptions): Promise<SimulatedAgents>;
}

/**
 * Several Dispatch processes on one fresh database, for one test file (the replica race, kill and
 * scope tests): small pools, two worker slots each, a dead replica noticed after 5 s, agents never
 * declared stopped for silence during a run. Started before the file's first test; its agents,
 * then its replicas, stopped and the database dropped after the last.
 */
export function useReplicaSwarm(options: ReplicaSwarmOptions): ReplicaSwarm {
  let database: TestDatabase | undefined;
  let replicas: ReplicaProcess[] = [];
  const agents: SimulatedAgents[] = [];
  const extra = options.config ?? {};

  beforeAll(async () => {
    database = await createTestDatabase();
    replicas = await spawnReplicas(options.replicas, {
      databaseUrl: database.url,
      name: options.name,
      ...(options.readyTimeoutMs ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
      config: {
        ...extra,
        database: { pool_size: 4, ...extra.database },
        worker: { concurrency: 2, heartbeat_interval_ms: 1_000, dead_after_ms: 5_000, ...extra.worker },
        assignment: { max_concurrent_per_agent: options.agentLimit, agent_heartbeat_timeout_ms: 120_000, ...extra.assignment },
      },
    });
  }, options.setupTimeoutMs ?? 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(replicas.map((r) => r.stop(5_000)));
    await database?.drop();
  });

  const started = () => {
    if (!database) throw new Error('the replica swarm is used before its beforeAll ran');
    return database;
  };
  return {
    get database() {
      return started();
    },
    get db() {
      return started().handle.db;
    },
    get replicas() {
      return replicas;
    },
    async startAgents(agentOptions) {
      const swarm = await SimulatedAgents.start(agentOptions);
      agents.push(swarm);
      return swarm;
    },
  };
}
