/**
 * HTTP benchmark: `npm run bench:http`.
 *
 * Starts one Dispatch as its own process (as in production: `node src/main.ts`, migrations at
 * startup, the assignment and lifecycle loops running) on a fresh database `dispatch_bench_http`,
 * then drives it from this process with autocannon over 127.0.0.1:
 *   1. POST /api/v1/tasks, in turns: on this Dispatch (header mode) with X-Agent-ID alone, on
 *      the same process with a requester credential's bearer token too (verified as in token
 *      mode), and on a second Dispatch in token mode (auth.mode token) with that token; three
 *      rounds each (throughput, and each process's CPU time per request), to show what checking
 *      credentials costs
 *   2. GET  /api/v1/tasks/:id    (read, spread over ids created in phase 1)
 *      The caller check alone is then timed in this process (bench/lib/credential-check.ts) and
 *      set against a create's CPU time, the figure two processes' noise cannot swing.
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
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import pg from 'pg';
import { REPLICA_ADMIN_TOKEN, spawnReplica, type ReplicaProcess } from '../test/helpers/replica-process.js';
import { admin, benchServerUrl, withDatabase } from './lib/database.js';
import { loadPhase, type LoadResult, type RequestShape } from './lib/http-load.js';
import { withBareInsertServer } from './reference/bare-insert.js';
import { credentialCheckCostUs } from './lib/credential-check.js';

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
  /** CPU time the measured Dispatch process spent per request (µs), when its pid was given. */
  cpuUsPerRequest?: number;
}

/** User + system CPU time of a process so far, in µs (/proc/<pid>/stat counts clock ticks of 10 ms). */
function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** Create phases per mode in the header/token comparison, taken in turns. */
const COMPARISON_ROUNDS = 3;
const LOAD = { connections: CONNECTIONS, warmupS: WARMUP_S, durationS: DURATION_S };
const CREATE_BODY = JSON.stringify({ title: 'benchmark task', scope: 'bench', priority: 3, context: { source: 'bench/http.ts' } });

async function phase(name: string, url: string, shape: RequestShape, pid?: number): Promise<PhaseResult> {
  if (pid === undefined) return { name, ...(await loadPhase([url], shape, LOAD)) };
  let spent = 0;
  const result = await loadPhase([url], shape, { ...LOAD, onMeasure: (moment) => (spent += moment === 'start' ? -cpuUs(pid) : cpuUs(pid)) });
  return { name, ...result, cpuUsPerRequest: spent / result.total };
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

/** A second Dispatch in token mode on the same database, and a requester credential it issued. */
async function tokenModeReplica(): Promise<{ replica: ReplicaProcess; token: string }> {
  const replica = await spawnReplica({
    databaseUrl: withDatabase(benchServerUrl(), DATABASE),
    name: 'bench-http-token',
    config: {
      server: { rate_limit_per_minute: 1_000_000_000 },
      auth: { mode: 'token' },
      database: { pool_size: POOL_SIZE },
      logging: { level: 'silent' },
    },
  });
  const issued = await fetch(`${replica.apiUrl}/api/v1/agents/${AGENT}/credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${REPLICA_ADMIN_TOKEN}` },
    body: JSON.stringify({ role: 'requester' }),
  });
  const { token } = (await issued.json()) as { token: string };
  return { replica, token };
}

/** Requests per second over several phases together. */
const pooledRate = (phases: readonly PhaseResult[]) => phases.reduce((n, p) => n + p.total, 0) / (phases.length * DURATION_S);

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
  let tokenMode: { replica: ReplicaProcess; token: string } | undefined;
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
    tokenMode = await tokenModeReplica();
    const headers = { 'content-type': 'application/json', 'x-agent-id': AGENT };
    const results: PhaseResult[] = [];
    const headerCreates: PhaseResult[] = [];
    const checkedCreates: PhaseResult[] = [];
    const tokenCreates: PhaseResult[] = [];
    // The three take turns (each replica idle while the other is measured), so none meets only
    // the fresher or only the fuller database.
    for (let round = 1; round <= COMPARISON_ROUNDS; round++) {
      const create = (name: string, target: ReplicaProcess, extra: Record<string, string>) =>
        phase(`${name} (round ${round})`, `${target.apiUrl}/api/v1/tasks`, { method: 'POST', headers: { ...headers, ...extra }, body: CREATE_BODY }, target.pid);
      const header = await create('POST /api/v1/tasks', replica, {});
      const checked = await create('POST /api/v1/tasks, + credential', replica, { authorization: `Bearer ${tokenMode.token}` });
      const token = await create('POST /api/v1/tasks, token mode', tokenMode.replica, { authorization: `Bearer ${tokenMode.token}` });
      headerCreates.push(header);
      checkedCreates.push(checked);
      tokenCreates.push(token);
      results.push(header, checked, token);
    }

    // Reads spread over many rows, as agents polling their own tasks would.
    const ids = await taskIds(10_000);
    if (ids.length === 0) throw new Error(`the create phases left no tasks to read: ${JSON.stringify(results[0])}`);
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

    const checkUs = await credentialCheckCostUs(withDatabase(benchServerUrl(), DATABASE), AGENT, tokenMode.token, REPLICA_ADMIN_TOKEN);

    await Promise.all([replica.stop(15_000), tokenMode.replica.stop(15_000)]);
    replica = undefined;
    tokenMode = undefined;

    // The yardstick last, on the same database server (Dispatch sits idle meanwhile).
    const bare = await withBareInsertServer(withDatabase(benchServerUrl(), DATABASE), POOL_SIZE, (url) =>
      phase('reference: bare Hono route, one INSERT', `${url}/tasks`, { method: 'POST', headers, body: CREATE_BODY }),
    );
    results.push(bare);

    report(results, loadBefore);
    const headerRate = pooledRate(headerCreates);
    console.log(`\ncreates: ${((headerRate / bare.requestsPerSecond) * 100).toFixed(0)}% of the bare route's rate on this machine, this run`);
    const cpu = (phases: readonly PhaseResult[]) => phases.reduce((n, p) => n + p.cpuUsPerRequest!, 0) / phases.length;
    const compare = (what: string, base: readonly PhaseResult[], other: readonly PhaseResult[]) => {
      const ratio = pooledRate(other) / pooledRate(base);
      console.log(
        `${what}: ${(ratio * 100).toFixed(0)}% of the create rate (costs ${(100 - ratio * 100).toFixed(1)}%), ` +
          `Dispatch CPU per create ${cpu(base).toFixed(0)} -> ${cpu(other).toFixed(0)} µs (${((cpu(other) / cpu(base) - 1) * 100).toFixed(1)}%)`,
      );
    };
    // The first comparison is the check alone: one process, the same calls, with and without a
    // credential to verify. The second adds whatever differs between two processes (JIT, pool
    // warmth, which of them ran the background jobs), so it swings more from run to run.
    compare(`credential checking, one process, ${COMPARISON_ROUNDS} alternating rounds (target <= 5%)`, headerCreates, checkedCreates);
    compare('token-mode replica against the header-mode replica', headerCreates, tokenCreates);
    const extraUs = checkUs.token - checkUs.header;
    console.log(
      `identifying the caller alone (the API's middleware in this process): header mode ${checkUs.header.toFixed(1)} µs, token mode ${checkUs.token.toFixed(1)} µs a call; ` +
        `+${extraUs.toFixed(1)} µs is ${((extraUs / cpu(headerCreates)) * 100).toFixed(1)}% of a create's Dispatch CPU in header mode (${cpu(headerCreates).toFixed(0)} µs)`,
    );
    const failed = results.filter((r) => r.non2xx > 0 || r.errors > 0);
    if (failed.length > 0) {
      console.error(`\nsome requests failed: ${failed.map((r) => r.name).join(', ')}`);
      process.exitCode = 1;
    }
  } finally {
    await tokenMode?.replica.stop(15_000);
    const exit = await replica?.stop(15_000);
    if (exit && exit.code !== 0) console.error(`dispatch exited with ${JSON.stringify(exit)}\n${replica!.output().slice(-2_000)}`);
    await admin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  }
}

await main();
