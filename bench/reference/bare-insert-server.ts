/**
 * The yardstick for `npm run bench:http`: a bare Hono route doing one pg INSERT per request (no
 * validation, auth, rate limit, events, metrics or batching), in its own process like Dispatch.
 * Its rate on the same machine, in the same run, says how close Dispatch's create path comes to
 * what Node, Hono and one INSERT can do at all, whatever the machine's speed that day.
 *
 * Usage: tsx bench/reference/bare-insert-server.ts <database url> <pool size>
 * Prints "listening <port>" once it serves on 127.0.0.1.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import pg from 'pg';

const [databaseUrl, poolSize] = process.argv.slice(2);
if (!databaseUrl) throw new Error('usage: bare-insert-server.ts <database url> <pool size>');

const pool = new pg.Pool({ connectionString: databaseUrl, max: Number(poolSize ?? 10) });
await pool.query(`CREATE TABLE IF NOT EXISTS bench_bare_tasks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL, scope text NOT NULL,
  priority int NOT NULL, context jsonb, created_at timestamptz NOT NULL DEFAULT now())`);

const app = new Hono();
app.post('/tasks', async (c) => {
  const body = await c.req.json<{ title: string; scope: string; priority: number; context?: unknown }>();
  const { rows } = await pool.query('INSERT INTO bench_bare_tasks (title, scope, priority, context) VALUES ($1, $2, $3, $4) RETURNING *', [
    body.title,
    body.scope,
    body.priority,
    JSON.stringify(body.context ?? null),
  ]);
  return c.json(rows[0], 201);
});

const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => console.log(`listening ${info.port}`));
process.once('SIGTERM', () => {
  server.close();
  void pool.end().then(() => process.exit(0));
});
