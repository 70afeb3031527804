import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import { ReplicaClient } from '../../test/helpers/simulated-agents.js';
import { withBenchDatabase } from '../lib/database.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, summarize, table } from '../lib/stats.js';
import { BENCH_SCOPE, waitUntil } from '../lib/workload.js';
import { PROFILE, log, withSwarm } from './common.js';

const PAIRS = PROFILE.idleTasks;
const FAN_OUT = 10_000;

/** Waits for a task to be assigned and returns its assignee and attempt. */
async function assigned(db: Db, id: string): Promise<{ assignee: string; attempt: number }> {
  let found: { assignee: string; attempt: number } | undefined;
  await waitUntil(`task ${id} assigned`, async () => {
    const { rows } = await sql<{ assignee: string; attempt: number }>`
      SELECT assignee, attempt FROM dispatch_tasks WHERE id = ${id} AND status = 'assigned'`.execute(db);
    found = rows[0];
    return found !== undefined;
  }, 30_000, 2);
  return found!;
}

async function completeOverRest(client: ReplicaClient, db: Db, id: string): Promise<void> {
  const held = await assigned(db, id);
  const response = await client.call('POST', `/api/v1/tasks/${id}/complete`, { agent: held.assignee, body: { attempt: held.attempt, result: { ok: true } } });
  if (response.status !== 200) throw new Error(`complete ${id}: ${response.status} ${JSON.stringify(response.body)}`);
}

async function create(client: ReplicaClient, body: Record<string, unknown>): Promise<string> {
  const response = await client.call('POST', '/api/v1/tasks', { agent: 'bench-planner', body: { title: 'dep', scope: BENCH_SCOPE, ...body } });
  if (response.status !== 201) throw new Error(`create: ${response.status} ${JSON.stringify(response.body)}`);
  return (response.body as { id: string }).id;
}

/**
 * Dependency release: the latency from a dependency's completion (completed_at, stamped by the
 * database) to its dependent's assignment (assigned_at), one pair at a time over REST with agents
 * free; and one completion releasing 10,000 dependents: its REST call, and completion to the last
 * dependent assigned.
 */
export async function dependencies(report: string[]): Promise<void> {
  await withBenchDatabase('deps', async (database) => {
    const db = database.handle.db;
    await withReplicas(database.url, { count: 1 }, (replicas) =>
      withSwarm(replicas, async () => {
        const client = new ReplicaClient(replicas.map((r) => r.apiUrl));
        log(`dependencies: ${PAIRS} pairs, dependency completed -> dependent assigned`);
        const latencies: number[] = [];
        for (let i = 0; i < PAIRS; i++) {
          const first = await create(client, {});
          const second = await create(client, { depends_on: [first] });
          await completeOverRest(client, db, first);
          await assigned(db, second);
          const { rows } = await sql<{ ms: number }>`
            SELECT extract(epoch FROM d.assigned_at - f.completed_at) * 1000 AS ms
              FROM dispatch_tasks f, dispatch_tasks d WHERE f.id = ${first} AND d.id = ${second}`.execute(db);
          if (i >= 10) latencies.push(Number(rows[0]!.ms)); // the first ten warm up
        }
        const release = summarize(latencies);
        log(`  p50 ${fmtMs(release.p50)} p99 ${fmtMs(release.p99)} max ${fmtMs(release.max)}`);

        log(`dependencies: one completion releasing ${FAN_OUT} dependents`);
        const root = await create(client, {});
        await sql`
          WITH t AS (
            INSERT INTO dispatch_tasks (requester, title, scope, status, waiting_on)
            SELECT 'bench-planner', 'fan-out ' || n, ${BENCH_SCOPE}, 'waiting', 1 FROM generate_series(1, ${FAN_OUT}) AS n
            RETURNING id)
          INSERT INTO dispatch_task_dependencies (task_id, depends_on_id) SELECT id, ${root}::uuid FROM t`.execute(db);
        await sql`ANALYZE dispatch_tasks`.execute(db);
        const started = performance.now();
        await completeOverRest(client, db, root);
        const callMs = performance.now() - started;
        await waitUntil('fan-out assigned', async () => {
          const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status IN ('waiting', 'pending')`.execute(db);
          return rows[0]!.n === 0;
        }, 300_000);
        const { rows } = await sql<{ all_ms: number; first_ms: number }>`
          SELECT extract(epoch FROM max(d.assigned_at) - r.completed_at) * 1000 AS all_ms,
                 extract(epoch FROM min(d.assigned_at) - r.completed_at) * 1000 AS first_ms
            FROM dispatch_task_dependencies e JOIN dispatch_tasks d ON d.id = e.task_id JOIN dispatch_tasks r ON r.id = e.depends_on_id
           WHERE e.depends_on_id = ${root} GROUP BY r.completed_at`.execute(db);
        const fan = rows[0]!;
        log(`  completion call ${fmtMs(callMs)}; first assigned ${fmtMs(Number(fan.first_ms))}, all ${fmtMs(Number(fan.all_ms))}`);
        report.push(
          '### Dependencies, 1 replica, agents free',
          table(
            ['what', 'n', 'p50', 'p99', 'max'],
            [['dependency completed -> dependent assigned', String(release.n), fmtMs(release.p50), fmtMs(release.p99), fmtMs(release.max)]],
          ),
          table(
            ['fan-out', 'completion call (REST, releases them all)', 'completion -> first assigned', 'completion -> all assigned'],
            [[`${FAN_OUT} dependents of one task`, fmtMs(callMs), fmtMs(Number(fan.first_ms)), fmtMs(Number(fan.all_ms))]],
          ),
        );
      }),
    );
  });
}
