import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DispatchConfig } from '../config/config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { hasUsableAdminCredential } from './credentials.queries.js';
import { issueCredential } from './credentials.service.js';

export type AuthMode = 'token' | 'header';

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * auth.mode, or by default: header mode only where nothing but this machine can reach the API.
 * Header mode beyond loopback must be asked for, and then it is warned about at every start.
 */
export function resolveAuthMode(config: DispatchConfig, logger: Logger): AuthMode {
  const mode = config.auth.mode ?? (isLoopback(config.server.host) ? 'header' : 'token');
  if (mode === 'header' && !isLoopback(config.server.host)) {
    logger.warn(
      { host: config.server.host },
      'auth.mode is header on a non-loopback address: any caller that reaches the API can act as any agent (X-Agent-ID is trusted); use token mode unless the network is trusted',
    );
  }
  return mode;
}

/**
 * Token mode with nobody able to issue credentials (no server.admin_token, no working admin
 * credential): make an admin credential and write its token to auth.bootstrap_token_file, readable
 * by this user only. The log says where the file is, never the token.
 */
export async function bootstrapAdmin(db: Db, config: DispatchConfig, logger: Logger): Promise<void> {
  if (config.server.admin_token !== '' || (await hasUsableAdminCredential(db))) return;
  const file = path.resolve(config.auth.bootstrap_token_file);
  const { credential, token } = await issueCredential(db, { agentId: 'admin', role: 'admin', scopes: [], expiresAt: null }, 'bootstrap');
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    logger.info({ file, credential: credential.id }, `token mode with no admin yet: an admin credential's token is in ${file}; use it to issue credentials`);
  } catch (error) {
    logger.error(
      { file, err: error },
      'token mode with no admin yet, and the bootstrap token file cannot be written: set server.admin_token (DISPATCH_ADMIN_TOKEN) or auth.bootstrap_token_file',
    );
  }
}
