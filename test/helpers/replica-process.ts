import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import type { DispatchConfigInput } from '../../src/config/config.js';

// No vitest imports here: the benchmark (bench/) spawns replicas with this helper too.

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const REPLICA_ADMIN_TOKEN = 'replica-admin-token-7c2e';

/**
 * Which of `processes` owns the TCP socket bound to local `port` on this machine (Linux /proc):
 * maps a PostgreSQL backend's client_port (pg_stat_activity) to the replica at the other end.
 */
export function ownerOfLocalPort<P extends { pid: number }>(port: number, processes: readonly P[]): P | undefined {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${portHex}`) && fields[9]) inodes.add(fields[9]);
    }
  }
  return processes.find((p) => {
    try {
      return readdirSync(`/proc/${p.pid}/fd`).some((fd) => inodes.has(readlinkSync(`/proc/${p.pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/)?.[1] ?? ''));
    } catch {
      return false;
    }
  });
}

/** A port nobody listens on right now (the kernel's pick); the child binds it a moment later. */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** A replica's log line at error or fatal level (the logger writes level labels, not numbers). */
export const ERROR_LOG_LINE = /"level":"(error|fatal)"/;

/** The error and fatal lines of a replica's output. */
export function errorLogLines(output: string): string[] {
  return output.split('\n').filter((line) => ERROR_LOG_LINE.test(line));
}

export interface ReplicaExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ReplicaProcess {
  name: string;
  pid: number;
  apiUrl: string;
  opsUrl: string;
  /** Settles when the process has exited (never rejects). */
  exited: Promise<ReplicaExit>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** The process's last output lines (JSON logs at warn level and above, and anything on stderr). */
  output(): string;
  /** Sends a signal; SIGTERM asks for a graceful stop, SIGKILL is a crash. */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if still alive after `graceMs`; resolves with how it exited. */
  stop(graceMs?: number): Promise<ReplicaExit>;
}

export interface SpawnReplicaOptions {
  databaseUrl: string;
  /** Config written to a YAML file (DISPATCH_CONFIG); merged over the defaults below. */
  config?: DispatchConfigInput;
  /** Extra environment for the child (wins over everything). */
  env?: Record<string, string>;
  name?: string;
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
// A crashed test run must not leave replicas behind holding database connections.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

const MAX_OUTPUT_CHARS = 64 * 1024;

function mergeConfig(base: DispatchConfigInput, overrides: DispatchConfigInput): DispatchConfigInput {
  const merged: Record<string, unknown> = { ...base };
  for (const [section, values] of Object.entries(overrides)) {
    merged[section] = { ...(merged[section] as object | undefined), ...(values as object) };
  }
  return merged as DispatchConfigInput;
}

async function startOnce(options: SpawnReplicaOptions, name: string): Promise<ReplicaProcess> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const config = mergeConfig(
    {
      server: { host: '127.0.0.1', admin_token: REPLICA_ADMIN_TOKEN, rate_limit_per_minute: 10_000_000 },
      database: { pool_size: 4 },
      // No NATS: the config key, not DISPATCH_HERMES_URL, because an empty env value is ignored.
      hermes: { url: '' },
      worker: { concurrency: 2 },
      logging: { level: 'warn' },
    },
    options.config ?? {},
  );
  const configPath = join(tmpdir(), `dispatch-replica-${name}-${randomBytes(4).toString('hex')}.yaml`);
  writeFileSync(configPath, toYaml(config));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DISPATCH_CONFIG: configPath,
      DISPATCH_DATABASE_URL: options.databaseUrl,
      DISPATCH_PORT: String(port),
      DISPATCH_METRICS_PORT: String(metricsPort),
      DISPATCH_ADMIN_TOKEN: REPLICA_ADMIN_TOKEN,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-MAX_OUTPUT_CHARS);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let hasExited = false;
  const exited = new Promise<ReplicaExit>((resolveExit) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      live.delete(child);
      rmSync(configPath, { force: true });
      resolveExit({ code, signal });
    });
  });
  const replica: ReplicaProcess = {
    name,
    pid: child.pid ?? -1,
    apiUrl: `http://127.0.0.1:${port}`,
    opsUrl: `http://127.0.0.1:${metricsPort}`,
    exited,
    hasExited: () => hasExited,
    output: () => output,
    kill: (signal) => {
      if (!hasExited) child.kill(signal);
    },
    async stop(graceMs = 20_000) {
      replica.kill('SIGTERM');
      const timer = setTimeout(() => replica.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (hasExited) {
      const how = await exited;
      throw new ReplicaStartError(`replica ${name} exited before it was ready (code ${how.code}, signal ${how.signal})`, output);
    }
    try {
      const response = await fetch(`${replica.opsUrl}/ready`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.ok) return replica;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      replica.kill('SIGKILL');
      await exited;
      throw new ReplicaStartError(`replica ${name} was not ready within ${options.readyTimeoutMs ?? 60_000} ms`, output);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class ReplicaStartError extends Error {
  override name = 'ReplicaStartError';
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(`${message}\n--- replica output ---\n${output.slice(-4_000)}`);
  }
}

/**
 * Starts one Dispatch replica as its own OS process (`node --import tsx src/main.ts`) on free
 * loopback ports, and resolves once its /ready answers 200. A port taken between our probe and
 * the child's bind (a rare race) is retried on fresh ports.
 */
export async function spawnReplica(options: SpawnReplicaOptions): Promise<ReplicaProcess> {
  const name = options.name ?? `replica-${randomBytes(2).toString('hex')}`;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, name);
    } catch (error) {
      const portRace = error instanceof ReplicaStartError && /EADDRINUSE/.test(error.output);
      if (!portRace || attempt >= 3) throw error;
    }
  }
}

/** Starts `count` replicas at once, on a database that is already migrated; all or none. */
export async function spawnReplicas(count: number, options: SpawnReplicaOptions): Promise<ReplicaProcess[]> {
  const replicas: ReplicaProcess[] = [];
  try {
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) => spawnReplica({ ...options, name: `${options.name ?? 'replica'}-${i + 1}` })),
    );
    for (const s of started) if (s.status === 'fulfilled') replicas.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    return replicas;
  } catch (error) {
    await Promise.all(replicas.map((r) => r.stop(2_000)));
    throw error;
  }
}
