import { loadConfig } from '../config/load.js';
import { createLogger, workerLogger } from '../observability/logger.js';
import { openDatabase } from './database.js';
import { startEmbeddedPostgres } from './embedded.js';
import { migrateToLatest } from './migrate.js';

/** `npm run migrate`: apply pending migrations (graphile-worker's and ours) and exit. */
const config = loadConfig();
const logger = createLogger(config.logging);
const embedded = config.database.url
  ? undefined
  : await startEmbeddedPostgres({ baseDir: config.database.embedded_dir, port: config.database.embedded_port, logger });
const database = openDatabase(config.database.url || embedded!.url, 2, 'dispatch-migrate');
try {
  const { applied } = await migrateToLatest(database.db, database.pool, workerLogger(logger));
  console.log(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'database is up to date');
} finally {
  await database.close();
  await embedded?.stop();
}
