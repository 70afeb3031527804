import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Cli } from 'kysely-codegen';
import { migrateToLatest } from '../src/db/migrate.js';
import { createLogger, workerLogger } from '../src/observability/logger.js';
import { runOnServer, scratchDatabase } from '../test/helpers/scratch-database.js';

/**
 * Files generated from a freshly migrated database, so that what the migrations leave behind is
 * readable without running them, and the Kysely types cannot drift from the tables:
 *   db/schema.sql                  pg_dump of the public schema (graphile-worker's is its own);
 *   src/db/generated/database.ts   Kysely's table types (kysely-codegen).
 * `npm run schema:dump` rewrites them; `npm run schema:check` (CI) fails when either is stale.
 * Needs a PostgreSQL server where it may create and drop a database (DISPATCH_SCHEMA_DATABASE_URL,
 * default the machine's at 127.0.0.1:5432) and its major version of pg_dump on PATH (or PG_DUMP).
 */

const SCHEMA_SQL = 'db/schema.sql';
const DATABASE_TS = 'src/db/generated/database.ts';

const serverUrl = process.env.DISPATCH_SCHEMA_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const check = process.argv.includes('--check');

/**
 * pg_dump without what changes from run to run or machine to machine: the version banner, and
 * the random key of `\restrict` (added in 15.14 and 17.6). Migration bookkeeping is left out.
 */
async function dumpSchema(url: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.env.PG_DUMP ?? 'pg_dump',
    ['--schema-only', '--schema=public', '--no-owner', '--no-privileges', '--exclude-table=kysely_migration*', url],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const lines = stdout.split('\n').filter((line) => !/^-- Dumped (from|by) /.test(line) && !/^\\(un)?restrict /.test(line));
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trim()}\n`;
}

/**
 * kysely-codegen, with the column types the database cannot tell it: the value sets its CHECK
 * constraints allow (src/db/columns.ts), a counter only triggers write, and int8 read as a number
 * (src/db/database.ts sets that parser).
 */
async function generateTypes(url: string): Promise<string> {
  return await new Cli().generate({
    dialect: 'postgres',
    url,
    includePattern: 'public.*',
    excludePattern: 'public.kysely_migration*',
    logLevel: 'error',
    outFile: null,
    typeMapping: { int8: 'number' },
    customImports: { TaskStatus: '../columns.js', AgentStatus: '../columns.js', AgentSource: '../columns.js', CredentialRole: '../columns.js' },
    overrides: {
      columns: {
        'dispatch_tasks.status': 'Generated<TaskStatus>',
        'dispatch_agents.status': 'Generated<AgentStatus>',
        'dispatch_agents.source': 'Generated<AgentSource>',
        'dispatch_agents.active_tasks': 'ColumnType<number, never, never>',
        'dispatch_credentials.role': 'CredentialRole',
      },
    },
  });
}

async function generate(): Promise<Record<string, string>> {
  const name = `dispatch_schema_${randomBytes(4).toString('hex')}`;
  await runOnServer(serverUrl, `CREATE DATABASE ${name}`);
  const database = scratchDatabase(serverUrl, name, 2, 'dispatch-schema');
  try {
    await migrateToLatest(database.handle.db, database.handle.pool, workerLogger(createLogger({ level: 'warn' })));
    return { [SCHEMA_SQL]: await dumpSchema(database.url), [DATABASE_TS]: await generateTypes(database.url) };
  } finally {
    await database.drop();
  }
}

const files = await generate();
const stale: string[] = [];
for (const [path, content] of Object.entries(files)) {
  const committed = await readFile(path, 'utf8').catch(() => undefined);
  if (committed === content) continue;
  if (check) stale.push(path);
  else await writeFile(path, content);
}
if (stale.length > 0) {
  console.error(`stale: ${stale.join(', ')} (differ from a freshly migrated database). Run \`npm run schema:dump\` and commit.`);
  process.exitCode = 1;
}
