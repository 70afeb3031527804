import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';

/**
 * PostgreSQL refuses to run as root. When Dispatch runs as root (a container, a fresh VM), the
 * embedded server runs as the `postgres` user instead, and that user must be able to reach the
 * binaries and the data. A clone in a private folder (`mktemp -d`, anything under /root) is out
 * of its reach, so this module finds places it can reach: the binaries are copied once per
 * version, and the data lives under SHARED_ROOT, linked from the configured folder.
 */

/** The user the server runs as; `undefined` ids mean "as this process's own user". */
export interface ServerUser {
  name: string;
  uid?: number;
  gid?: number;
}

/** Raised with a message that says what to do; the process prints it as one line. */
export class EmbeddedPostgresError extends Error {}

const SHARED_ROOT = '/var/lib/dispatch/embedded-postgres';
const SERVER_USER = 'postgres';

function idOf(flag: '-u' | '-g', name: string): number | undefined {
  try {
    return Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    return undefined;
  }
}

/** As root, the `postgres` user (created, as a system user, when the machine has none). */
export function serverUser(): ServerUser {
  if (process.getuid?.() !== 0) return { name: 'self' };
  if (idOf('-u', SERVER_USER) === undefined) {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', SERVER_USER], {
        stdio: 'ignore',
      });
    } catch {
      throw new EmbeddedPostgresError(
        'running as root, the embedded PostgreSQL needs a `postgres` user to run as and could not create one: ' +
          'create it (useradd --system postgres), run Dispatch as another user, or set DISPATCH_DATABASE_URL',
      );
    }
  }
  return { name: SERVER_USER, uid: idOf('-u', SERVER_USER), gid: idOf('-g', SERVER_USER) };
}

/** Whether `user` passes `test <flag> target`, checked by the kernel as that user. */
function userCan(user: ServerUser, flag: '-x' | '-w', target: string): boolean {
  if (user.uid === undefined) return true;
  const check = spawnSync('/bin/sh', ['-c', `test ${flag} "$1"`, 'sh', target], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
  return check.status === 0;
}

function sharedDir(...parts: string[]): string {
  const dir = path.join(SHARED_ROOT, ...parts);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/**
 * The `native/` folder of the binary package, or a copy the server user can run. The copy is
 * made beside its final name and renamed into place, so two processes starting at once never
 * see half a copy.
 */
export function reachableBinaries(user: ServerUser, nativeDir: string): string {
  if (userCan(user, '-x', path.join(nativeDir, 'bin', 'postgres'))) return nativeDir;
  const version = (JSON.parse(readFileSync(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const target = path.join(sharedDir(), `binaries-${version}`);
  if (!existsSync(path.join(target, 'bin', 'postgres'))) {
    const staging = `${target}.${randomBytes(4).toString('hex')}`;
    cpSync(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    try {
      renameSync(staging, target);
    } catch {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  if (!userCan(user, '-x', path.join(target, 'bin', 'postgres'))) {
    throw new EmbeddedPostgresError(
      `the ${user.name} user cannot run the embedded PostgreSQL binaries even from ${target}: ` +
        'run Dispatch as a user other than root, or set DISPATCH_DATABASE_URL',
    );
  }
  return target;
}

/**
 * Where the cluster's data lives: `<baseDir>/data` when the server user can reach `baseDir`,
 * otherwise a folder under SHARED_ROOT named after `baseDir` (so a restart finds it again), with
 * `<baseDir>/data` a link to it for anyone looking. The data folder is owned by the server user.
 */
export function reachableDataDir(user: ServerUser, baseDir: string): { dataDir: string; relocated: boolean } {
  const configured = path.join(baseDir, 'data');
  let dataDir = configured;
  const relocated = !userCan(user, '-x', baseDir);
  if (relocated) {
    const key = createHash('sha256').update(baseDir).digest('hex').slice(0, 16);
    dataDir = path.join(sharedDir(`cluster-${key}`), 'data');
    if (!existsSync(configured)) symlinkSync(dataDir, configured);
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (user.uid !== undefined) chownSync(dataDir, user.uid, user.gid ?? user.uid);
  if (!userCan(user, '-w', dataDir)) {
    throw new EmbeddedPostgresError(`the ${user.name} user cannot write the embedded PostgreSQL data in ${dataDir}: fix its owner, or set DISPATCH_DATABASE_URL`);
  }
  return { dataDir, relocated };
}
