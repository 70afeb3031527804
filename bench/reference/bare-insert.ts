import { spawn } from 'node:child_process';

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
