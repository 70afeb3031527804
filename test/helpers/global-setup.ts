import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createLogger, workerLogger, type Logger } from '../../src/observability/logger.js';
import { freePort } from './replica-process.js';
import { runOnServer, withDatabase } from './scratch-database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of a database on the test server from which new databases can be created. */
    serverUrl: string;
    /** The migrated template this run's test databases are cloned from (one per run). */
    templateDatabase: string;
  }
}

interface TestServer {
  serverUrl: string;
  templateDatabase: string;
  embedded?: EmbeddedDatabase;
}

/** A throwaway embedded server on a free port, in a fresh folder: two runs at once never meet. */
async function startThrowawayServer(logger: Logger): Promise<EmbeddedDatabase> {
  for (let attempt = 1; ; attempt++) {
    const baseDir = mkdtempSync(path.join(tmpdir(), 'dispatch-test-pg-'));
    // Run as root, the server runs as the postgres user, which must be able to enter this folder.
    chmodSync(baseDir, 0o711);
    try {
      return await startEmbeddedPostgres({ baseDir, port: await freePort(), logger, settings: { fsync: 'off' } });
    } catch (error) {
      // Another process may take the free port between our pick and the server's bind.
      if (attempt === 3) throw error;
    }
  }
}

async function startTestServer(): Promise<TestServer> {
  const logger = createLogger({ level: process.env.DISPATCH_TEST_LOG_LEVEL ?? 'warn' });
  let embedded: EmbeddedDatabase | undefined;
  let serverUrl = process.env.DISPATCH_TEST_DATABASE_URL;
  if (!serverUrl) {
    embedded = await startThrowawayServer(logger);
    serverUrl = embedded.url;
  }
  // A template per run, so two test runs sharing one server never drop each other's template.
  const templateDatabase = `dispatch_template_${randomBytes(4).toString('hex')}`;
  await runOnServer(serverUrl, `CREATE DATABASE ${templateDatabase}`);
  const template = openDatabase(withDatabase(serverUrl, templateDatabase), 2);
  await migrateToLatest(template.db, template.pool, workerLogger(logger));
  await template.close();
  return { serverUrl, templateDatabase, embedded };
}

async function stopTestServer(server: TestServer): Promise<void> {
  await runOnServer(server.serverUrl, `DROP DATABASE IF EXISTS ${server.templateDatabase} WITH (FORCE)`).catch(() => undefined);
  await server.embedded?.destroy();
}

/**
 * vitest calls a global setup once for the root project and once for each project that runs,
 * all in this one process; they share one server, started by the first call and stopped after
 * the last teardown, so a whole `npm test` (core and swarm projects) runs on one PostgreSQL.
 */
const shared = globalThis as { dispatchTestServer?: { server: Promise<TestServer>; users: number } };

/**
 * One PostgreSQL for the whole run: DISPATCH_TEST_DATABASE_URL when given, otherwise an embedded
 * server. A template database is migrated once; each test file clones it (CREATE DATABASE ...
 * TEMPLATE), which takes milliseconds and shares no state with other files.
 */
export default async function setup(project: TestProject) {
  shared.dispatchTestServer ??= { server: startTestServer(), users: 0 };
  const entry = shared.dispatchTestServer;
  entry.users += 1;
  const server = await entry.server;
  project.provide('serverUrl', server.serverUrl);
  project.provide('templateDatabase', server.templateDatabase);
  return async () => {
    entry.users -= 1;
    if (entry.users > 0) return;
    shared.dispatchTestServer = undefined;
    await stopTestServer(server);
  };
}
