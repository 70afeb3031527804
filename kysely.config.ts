import { PostgresDialect } from 'kysely';
import { defineConfig } from 'kysely-ctl';
import pg from 'pg';
import { migrationProvider } from './db/migrations.js';

/**
 * kysely-ctl (`npx kysely migrate:list`, `migrate:latest`) against DISPATCH_DATABASE_URL.
 * `npm run migrate` is the usual way in: it also migrates graphile-worker's schema, which the
 * queue's SQL functions call, and takes the same advisory lock as a starting replica.
 */
export default defineConfig({
  dialect: new PostgresDialect({
    pool: new pg.Pool({ connectionString: process.env.DISPATCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/dispatch' }),
  }),
  migrations: { provider: migrationProvider },
});
