import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const CLI_PATH = join(REPO_ROOT, 'dist/src/cli.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Builds the package (`npm run build`) unless dist/ is newer than every file of src/, so the
 * tests run the binary a user would get. Serialised with other builds by the caller's vitest
 * process only; a build takes a minute on a loaded machine.
 */
export function ensureBuilt(): string {
  let built = 0;
  try {
    built = statSync(CLI_PATH).mtimeMs;
  } catch {
    // never built
  }
  if (built < newestSource(join(REPO_ROOT, 'src'))) execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: 'pipe' });
  return CLI_PATH;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `dispatch` binary with only the environment given (no DISPATCH_* of ours leaks in). */
export async function runCli(args: string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return await new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [CLI_PATH, ...args],
      { cwd: options.cwd ?? REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...options.env }, timeout: options.timeoutMs ?? 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}
