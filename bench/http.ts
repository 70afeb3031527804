/**
 * HTTP benchmark: `npm run bench:http`.
 *
 * Starts one Dispatch as its own process (as in production: `node src/main.ts`, migrations at
 * startup, the assignment and lifecycle loops running) on a fresh database `dispatch_bench_http`,
 * then drives it from this process with autocannon over 127.0.0.1:
 *   1. POST /api/v1/tasks        (create)
 *   2. GET  /api/v1/tasks/:id    (read, spread over ids created in phase 1)
 *   3. the same create body against bench/reference/bare-insert-server.ts (a bare Hono route
 *      doing one INSERT), the yardstick the create rate is compared with
 * Each phase warms up, then measures; the database is dropped at the end.
 *
 * Settings (environment):
 *   DISPATCH_BENCH_DATABASE_URL  server to use (loopback only), default postgres://postgres@127.0.0.1:5432/postgres
 *   BENCH_DURATION_S (10)  BENCH_WARMUP_S (2)  BENCH_CONNECTIONS (50)  BENCH_POOL_SIZE (10)
 *
 * The load generator, the server and PostgreSQL share this machine's cores, so the figures are
 * for the whole system on one box, not for the server alone.
 */
import { spawn } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import pg from 'pg';
import { spawnReplica, type ReplicaProcess } from '../test/helpers/replica-process.js';
import { admin, benchServerUrl, withDatabase } from './lib/database.js';
import { loadPhase, type LoadResult, type RequestShape } from './lib/http-load.js';

const DATABASE = 'dispatch_bench_http';
const AGENT = 'bench-agent';

const setting = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
};
const DURATION_S = setting('BENCH_DURATION_S', 10);
const WARMUP_S = setting('BENCH_WARMUP_S', 2);
const CONNECTIONS = setting('BENCH_CONNECTIONS', 50);
const POOL_SIZE = setting('BENCH_POOL_SIZE', 10);

interface PhaseResult extends LoadResult {
  name: string;
}

const LOAD = { connections: CONNECTIONS, warmupS: WARMUP_S, durationS: DURATION_S };
const CREATE_BODY = JSON.stringify({ title: 'benchmark task', scope: 'bench', priority: 3, context: { source: 'bench/http.ts' } });

/** Runs `fn` against bench/reference/bare-insert-server.ts in its own process, then stops it. */
async function withBareInsertServer<T>(databaseUrl: string, poolSize: number, fn: (url: string) => Promise<T>): Promise<T> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/reference/bare-insert-server.ts', databaseUrl, String(poolSize)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`bare reference server exited with ${code}`)));
      child.stdout.on('data', (chunk: Buffer) => {
        const match = /listening (\d+)/.exec(chunk.toString());
        if (match) resolve(Number(match[1]));
      });
    });
    return await fn(`http://127.0.0.1:${port}`);
  } finally {
    child.kill('SIGTERM');
  }
}

async function phase(name: string, url: string, shape: RequestShape): Promise<PhaseResult> {
  return { name, ...(await loadPhase([url], shape, LOAD)) };
}

async function taskIds(limit: number): Promise<string[]> {
  const client = new pg.Client({ connectionString: withDatabase(benchServerUrl(), DATABASE) });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>('SELECT id FROM dispatch_tasks ORDER BY random() LIMIT $1', [limit]);
    return rows.map((r) => r.id);
  } finally {
    await client.end();
  }
}

function report(results: PhaseResult[], loadBefore: number): void {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  console.log(`\nDispatch HTTP benchmark: ${availableParallelism()} cores (${cpu}), Node ${process.version}`);
  console.log(`${CONNECTIONS} connections, ${WARMUP_S} s warm-up + ${DURATION_S} s measured per phase, server pool ${POOL_SIZE}`);
  // Anything else running on the box competes for the same cores: say how busy it was.
  console.log(`1-minute load average: ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after\n`);
  const header = ['phase', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'requests', 'non-2xx', 'errors'];
  const rows = results.map((r) => [
    r.name,
    Math.round(r.requestsPerSecond).toLocaleString('en-US'),
    r.p50.toFixed(0),
    String(r.p99),
    String(r.max),
    r.total.toLocaleString('en-US'),
    String(r.non2xx),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  await admin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${DATABASE}`);
  let replica: ReplicaProcess | undefined;
  try {
    replica = await spawnReplica({
      databaseUrl: withDatabase(benchServerUrl(), DATABASE),
      name: 'bench-http',
      config: {
        server: { rate_limit_per_minute: 1_000_000_000 },
        database: { pool_size: POOL_SIZE },
        logging: { level: 'silent' },
      },
    });
    const headers = { 'content-type': 'application/json', 'x-agent-id': AGENT };
    const results: PhaseResult[] = [];

    results.push(
      await phase('POST /api/v1/tasks', `${replica.apiUrl}/api/v1/tasks`, {
        method: 'POST',
        headers,
        body: CREATE_BODY,
      }),
    );

    // Reads spread over many rows, as agents polling their own tasks would.
    const ids = await taskIds(10_000);
    if (ids.length === 0) throw new Error(`the create phase left no tasks to read: ${JSON.stringify(results[0])}`);
    let next = 0;
    results.push(
      await phase('GET /api/v1/tasks/:id', replica.apiUrl, {
        headers,
        requests: [
          {
            method: 'GET',
            setupRequest: (request) => ({ ...request, path: `/api/v1/tasks/${ids[next++ % ids.length]}` }),
          },
        ],
      }),
    );

    // The yardstick last, on the same database server (Dispatch sits idle meanwhile).
    const bare = await withBareInsertServer(withDatabase(benchServerUrl(), DATABASE), POOL_SIZE, (url) =>
      phase('reference: bare Hono route, one INSERT', `${url}/tasks`, { method: 'POST', headers, body: CREATE_BODY }),
    );
    results.push(bare);

    report(results, loadBefore);
    console.log(
      `\ncreates: ${((results[0]!.requestsPerSecond / bare.requestsPerSecond) * 100).toFixed(0)}% of the bare route's rate on this machine, this run`,
    );
    const failed = results.filter((r) => r.non2xx > 0 || r.errors > 0);
    if (failed.length > 0) {
      console.error(`\nsome requests failed: ${failed.map((r) => r.name).join(', ')}`);
      process.exitCode = 1;
    }
  } finally {
    const exit = await replica?.stop(15_000);
    if (exit && exit.code !== 0) console.error(`dispatch exited with ${JSON.stringify(exit)}\n${replica!.output().slice(-2_000)}`);
    await admin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  }
}

await main();
