import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { createLogger } from '../../src/observability/logger.js';
import { freePort } from '../helpers/replica-process.js';

const logger = createLogger({ level: 'silent' });
const REPO_ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

async function query(url: string, text: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

/**
 * The embedded default as a newcomer meets it. mkdtemp makes a 0700 folder: run as root (as CI
 * is), the postgres user the server runs as cannot enter it, which is the case that used to die
 * with `spawn initdb EACCES`.
 */
describe('embedded PostgreSQL', () => {
  const privateDir = mkdtempSync(path.join(tmpdir(), 'dispatch-embedded-test-'));
  const baseDir = path.join(privateDir, '.dispatch', 'postgres');
  const started: EmbeddedDatabase[] = [];
  afterAll(async () => {
    for (const server of started) await server.destroy();
    // The failed start below leaves its (relocated, as root) data for a next try, as it would for a user.
    const leftover = path.join(privateDir, 'other', 'data');
    if (existsSync(leftover) && lstatSync(leftover).isSymbolicLink()) rmSync(path.dirname(realpathSync(leftover)), { recursive: true, force: true });
    rmSync(privateDir, { recursive: true, force: true });
  });

  it('starts in a private folder, keeps its data across a restart, and stops with its process', async () => {
    const port = await freePort();
    const first = await startEmbeddedPostgres({ baseDir, port, logger });
    await query(first.url, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('survives')");
    await first.stop();
    const second = await startEmbeddedPostgres({ baseDir, port, logger });
    started.push(second);
    expect(await query(second.url, 'SELECT note FROM kept')).toEqual([{ note: 'survives' }]);
    expect(second.dataDir).toBe(first.dataDir);
    // As root, the data moved where the postgres user can reach it, and the usual path links to it.
    expect(second.relocated).toBe(process.getuid?.() === 0);
    if (second.relocated) expect(lstatSync(path.join(baseDir, 'data')).isSymbolicLink()).toBe(true);
    expect(await query(second.url, "SELECT current_setting('listen_addresses') AS listen")).toEqual([{ listen: '127.0.0.1' }]);
  });

  it('refuses a second server on the same data with a message that says what to do', async () => {
    const attempt = startEmbeddedPostgres({ baseDir, port: await freePort(), logger });
    await expect(attempt).rejects.toBeInstanceOf(EmbeddedPostgresError);
    await expect(attempt).rejects.toThrow(/did not start .*DISPATCH_DATABASE_URL/);
  });

  it('a dispatch process that cannot start its embedded server exits 1 with one line, not a stack trace', () => {
    const server = started[0]!;
    const port = new URL(server.url).port;
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        ...process.env,
        DISPATCH_DATABASE_URL: '',
        DISPATCH_DATA_DIR: path.join(privateDir, 'other'),
        DISPATCH_EMBEDDED_PORT: port,
        DISPATCH_PORT: '0',
        DISPATCH_METRICS_PORT: '0',
        DISPATCH_HERMES_URL: '',
      },
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^dispatch: embedded PostgreSQL did not start on 127\.0\.0\.1:\d+ .*DISPATCH_EMBEDDED_PORT/);
  });
});
