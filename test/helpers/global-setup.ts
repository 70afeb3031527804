import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createLogger, workerLogger } from '../../src/observability/logger.js';
import { runOnServer, withDatabase } from './scratch-database.js';

import { randomBytes } from 'node:crypto';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of a database on the test server from which new databases can be created. */
    serverUrl: string;
    /** The migrated template this run's test databases are cloned from (one per run). */
    templateDatabase: string;
  }
}

/**
 * One PostgreSQL for the whole run: DISPATCH_TEST_DATABASE_URL when given, otherwise an embedded
 * server. A template database is migrated once; each test file clones it (CREATE DATABASE ...
 * TEMPLATE), which takes milliseconds and shares no state with other files.
 */
export default async function setup(project: TestProject) {
  const logger = createLogger({ level: process.env.DISPATCH_TEST_LOG_LEVEL ?? 'warn' });
  let embedded: EmbeddedDatabase | undefined;
  let serverUrl = process.env.DISPATCH_TEST_DATABASE_URL;
  if (!serverUrl) {
    embedded = await startEmbeddedPostgres({ baseDir: '.dispatch/test-postgres', port: 54339, logger });
    serverUrl = embedded.url;
  }
  // A template per run, so two test runs sharing one server never drop each other's template.
  const templateDatabase = `dispatch_template_${randomBytes(4).toString('hex')}`;
  await runOnServer(serverUrl, `CREATE DATABASE ${templateDatabase}`);
  const template = openDatabase(withDatabase(serverUrl, templateDatabase), 2);
  await migrateToLatest(template.db, template.pool, workerLogger(logger));
  await template.close();
  project.provide('serverUrl', serverUrl);
  project.provide('templateDatabase', templateDatabase);
  return async () => {
    await runOnServer(serverUrl!, `DROP DATABASE IF EXISTS ${templateDatabase} WITH (FORCE)`);
    await embedded?.stop();
  };
}
