import { spawn } from 'node:child_process';
import { loadPhase, type LoadResult } from '../lib/http-load.js';

/**
 * Runs `fn` against bench/reference/bare-insert-server.ts (a bare Hono route doing one INSERT
 * per request) in its own process on `databaseUrl`, then stops it. The yardstick of the create
 * rate, for `npm run bench:http` and `npm run bench` alike.
 */
export async function withBareInsertServer<T>(databaseUrl: string, poolSize: number, fn: (url: string) => Promise<T>): Promise<T> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/reference/bare-insert-server.ts', databaseUrl, String(poolSize)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`bare reference server exited with ${code}`)));
      child.stdout.on('data', (chunk: Buffer) => {
        const match = /listening (\d+)/.exec(chunk.toString());
        if (match) resolve(Number(match[1]));
      });
    });
    return await fn(`http://127.0.0.1:${port}`);
  } finally {
    child.kill('SIGTERM');
    // Its pool must be gone before the caller drops the database.
    await exited;
  }
}

/**
 * The bare route's create rate on `databaseUrl` (its own table there): 50 connections posting the
 * create body the HTTP benchmarks use, for `timing`'s warm-up and duration.
 */
export async function bareRouteRate(databaseUrl: string, timing: { warmupS: number; durationS: number }): Promise<LoadResult> {
  return await withBareInsertServer(databaseUrl, 10, (url) =>
    loadPhase([`${url}/tasks`], { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'http load', scope: 'bench', priority: 3, context: { source: 'bench/assignment.ts' } }) }, {
      connections: 50,
      ...timing,
    }),
  );
}
