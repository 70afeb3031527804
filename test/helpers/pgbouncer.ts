import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './replica-process.js';

// No vitest imports here: usable from the benchmark too.

/** The Debian package's binary; CI (.ci/run) installs it when missing. */
export const PGBOUNCER_BINARY = '/usr/sbin/pgbouncer';

export interface PgBouncer {
  /** The URL of `database` through PgBouncer (same user and password as the server's URL). */
  url(database: string): string;
  /** Runs a command (SHOW …) on PgBouncer's admin console. */
  admin<T extends object>(command: string): Promise<T[]>;
  /** The process's output so far (its log goes to stderr). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts a real PgBouncer (the Debian package's /usr/sbin/pgbouncer) on a free loopback port in
 * front of the server `serverUrl` points at, in transaction pooling mode, with a generated config
 * in a temporary folder. `serverPoolSize` server connections per database and user: kept small
 * so that clients really share server connections, and session state would leak between them.
 */
export async function startPgBouncer(serverUrl: string, serverPoolSize = 4): Promise<PgBouncer> {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const password = decodeURIComponent(server.password);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'dispatch-pgbouncer-'));
  // PgBouncer refuses to run as root: it drops to `postgres`, which must read its files.
  chmodSync(dir, 0o755);
  const userlist = join(dir, 'userlist.txt');
  writeFileSync(userlist, `"${user}" "${password}"\n`, { mode: 0o644 });
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      // md5 checks the client's password against the userlist; the plain text there also logs
      // PgBouncer in to the server (SCRAM or md5). Without a password the server trusts loopback.
      `auth_type = ${password ? 'md5' : 'trust'}`,
      `auth_file = ${userlist}`,
      `admin_users = ${user}`,
      'pool_mode = transaction',
      `default_pool_size = ${serverPoolSize}`,
      'max_client_conn = 200',
      'server_reset_query =',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', ini] : [ini];
  const child: ChildProcess = spawn(PGBOUNCER_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stopOnExit = () => child.kill('SIGKILL');
  process.once('exit', stopOnExit);

  const url = (database: string) => {
    const through = new URL(serverUrl);
    through.hostname = '127.0.0.1';
    through.port = String(port);
    through.pathname = `/${database}`;
    return through.toString();
  };
  const admin = async <T extends object>(command: string): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url('pgbouncer') });
    await client.connect();
    try {
      // No parameters: the simple protocol, the only one the admin console speaks.
      return (await client.query<T>(command)).rows;
    } finally {
      await client.end();
    }
  };
  const stop = async () => {
    process.off('exit', stopOnExit);
    child.kill('SIGINT');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await admin('SHOW VERSION');
      break;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`pgbouncer did not start on 127.0.0.1:${port}: ${String(error)}\n${output}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { url, admin, output: () => output, stop };
}
