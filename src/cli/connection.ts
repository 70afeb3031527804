import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DispatchClient } from '../client/index.js';

export interface ConnectionOptions {
  url?: string;
  token?: string;
  agent?: string;
}

const DEFAULT_URL = 'http://localhost:8600';
const BOOTSTRAP_TOKEN_FILE = '.dispatch/admin-token';
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The admin token `npm start` wrote, for a Dispatch on this machine. Only for a loopback URL (the
 * token never leaves the machine because a URL was mistyped), and only from a file of this user's
 * that nobody else may read (as ssh treats private keys): a token anyone could have written or
 * read is not one to present.
 */
export function bootstrapToken(url: string, file = BOOTSTRAP_TOKEN_FILE): string | undefined {
  if (!LOOPBACK.has(new URL(url).hostname)) return undefined;
  const resolved = path.resolve(file);
  let stat;
  try {
    stat = statSync(resolved);
  } catch {
    return undefined;
  }
  const ours = typeof process.getuid !== 'function' || stat.uid === process.getuid();
  if (!ours || (stat.mode & 0o077) !== 0) {
    throw new Error(`${resolved} is readable or owned by another user: not using it (chmod 600 it, or pass --token)`);
  }
  return readFileSync(resolved, 'utf8').trim() || undefined;
}

/** --url and --token, else DISPATCH_URL and DISPATCH_TOKEN, else localhost and its bootstrap token. */
export function clientFrom(options: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): DispatchClient {
  const url = options.url ?? env.DISPATCH_URL ?? DEFAULT_URL;
  const token = options.token ?? env.DISPATCH_TOKEN ?? bootstrapToken(url);
  const agent = options.agent ?? env.DISPATCH_AGENT;
  return new DispatchClient({ url: url.split(','), token, agent });
}
