import type { DispatchConfig } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import type { EmbeddedDatabase } from './embedded.js';

export interface ConfiguredDatabase {
  /** Connection URL (may hold a password: never log it). */
  url: string;
  /** The embedded server when none was configured; stop it last. */
  embedded?: EmbeddedDatabase;
}

/**
 * `database.url` when set; otherwise the embedded PostgreSQL, whose module (and binaries) are
 * loaded only then, so a deployment with a real server never touches them.
 */
export async function configuredDatabase(config: DispatchConfig, logger: Logger): Promise<ConfiguredDatabase> {
  if (config.database.url) return { url: config.database.url };
  const { startEmbeddedPostgres } = await import('./embedded.js');
  const embedded = await startEmbeddedPostgres({ baseDir: config.database.embedded_dir, port: config.database.embedded_port, logger });
  logger.info(
    { dataDir: embedded.dataDir, port: config.database.embedded_port },
    embedded.relocated
      ? `no database configured: using the embedded PostgreSQL; its data lives in ${embedded.dataDir}, where the postgres user can reach it (linked from ${config.database.embedded_dir}/data); set DISPATCH_DATABASE_URL (or database.url) to use your own server`
      : 'no database configured: using the embedded PostgreSQL; set DISPATCH_DATABASE_URL (or database.url) to use your own server',
  );
  return { url: embedded.url, embedded };
}
