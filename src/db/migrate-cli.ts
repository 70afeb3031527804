import { loadConfig } from '../config/load.js';
import { createLogger, workerLogger } from '../observability/logger.js';
import { openDatabase } from './database.js';
import { configuredDatabase } from './configured-database.js';
import { migrateToLatest } from './migrate.js';

/** `npm run migrate`: apply pending migrations (graphile-worker's and ours) and exit. */
const config = loadConfig();
const logger = createLogger(config.logging);
const { url, embedded } = await configuredDatabase(config, logger);
const database = openDatabase(url, 2, 'dispatch-migrate');
try {
  const { applied } = await migrateToLatest(database.db, database.pool, workerLogger(logger));
  console.log(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'database is up to date');
} finally {
  await database.close();
  await embedded?.stop();
}
