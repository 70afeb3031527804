import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DispatchClient, runAgent, type AgentRunner } from '../../src/client/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { spawnReplicas, type ReplicaProcess } from '../helpers/replica-process.js';
import { waitFor } from '../helpers/wait.js';

/**
 * End to end with the SDK: 20 agents (runAgent, each holding its assignment stream) and 2 replica
 * processes run 2,000 tasks; one replica is SIGKILLed halfway. The agents on it reconnect to the
 * other with Last-Event-ID, the creates and completes that were in flight on it are retried there
 * (the same Idempotency-Key; a lost complete answer resolved from the audit trail), and every task
 * completes exactly once: one `completed` event per task in the audit trail, none failed.
 */

const AGENTS = 20;
const TASKS = 2_000;
const SCOPE = 'e2e';

let database: TestDatabase;
let replicas: ReplicaProcess[] = [];
const runners: AgentRunner[] = [];
const runs = new Map<string, number>();
const sdkErrors: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  replicas = await spawnReplicas(2, {
    databaseUrl: database.url,
    name: 'sdk',
    config: {
      worker: { concurrency: 2, heartbeat_interval_ms: 1_000, dead_after_ms: 5_000 },
      // Agents reconnecting after the kill must not be declared stopped meanwhile.
      assignment: { max_concurrent_per_agent: 4, agent_heartbeat_timeout_ms: 120_000 },
      server: { shutdown_grace_ms: 10_000 },
    },
  });
  const urls = replicas.map((r) => r.apiUrl);
  for (let i = 0; i < AGENTS; i++) {
    // Half the agents start on each replica; the other is where they go when theirs is gone.
    const order = i % 2 === 0 ? urls : [...urls].reverse();
    runners.push(
      await runAgent({
        url: order,
        name: `sdk-agent-${i}`,
        capabilities: [SCOPE],
        maxConcurrent: 4,
        handleSignals: false,
        retry: { retries: 8, baseDelayMs: 50, maxDelayMs: 2_000 },
        onError: (error) => sdkErrors.push(error instanceof Error ? error.message : String(error)),
        handle: async (task) => {
          runs.set(task.id, (runs.get(task.id) ?? 0) + 1);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
          return { by: `sdk-agent-${i}` };
        },
      }),
    );
  }
}, 180_000);

afterAll(async () => {
  await Promise.all(runners.map((r) => r.stop()));
  await Promise.all(replicas.map((r) => r.stop(5_000)));
  await database?.drop();
}, 120_000);

const count = async (where: string) =>
  (await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status = ${where}`.execute(database.handle.db)).rows[0]!.n;

describe('20 SDK agents, 2 replicas, one killed halfway', () => {
  it('complete 2,000 tasks, each exactly once', async () => {
    const started = Date.now();
    const planner = new DispatchClient({ url: replicas.map((r) => r.apiUrl), agent: 'sdk-planner', retry: { retries: 8, baseDelayMs: 50, maxDelayMs: 2_000 } });
    let next = 0;
    const create = async () => {
      while (next < TASKS) {
        const n = next++;
        await planner.tasks.create({ title: `e2e ${n}`, scope: SCOPE, max_retries: 0 });
      }
    };
    const creating = Promise.all(Array.from({ length: 10 }, create));

    await waitFor(async () => (await count('completed')) >= TASKS / 2, { what: 'half the tasks completed', timeoutMs: 120_000, intervalMs: 100 });
    replicas[0]!.kill('SIGKILL');
    const killedAt = await count('completed');
    await replicas[0]!.exited;
    await creating;

    await waitFor(async () => (await count('completed')) === TASKS, { what: 'every task completed', timeoutMs: 120_000, intervalMs: 200 });
    const elapsed = Date.now() - started;

    const { rows } = await sql<{ tasks: number; completed_events: number; over_once: number; other_status: number }>`
      SELECT (SELECT count(*)::int FROM dispatch_tasks) AS tasks,
             (SELECT count(*)::int FROM dispatch_task_events WHERE event = 'completed') AS completed_events,
             (SELECT count(*)::int FROM (SELECT task_id FROM dispatch_task_events WHERE event = 'completed'
                                          GROUP BY task_id HAVING count(*) > 1) d) AS over_once,
             (SELECT count(*)::int FROM dispatch_tasks WHERE status <> 'completed') AS other_status`.execute(database.handle.db);
    expect(rows[0]).toEqual({ tasks: TASKS, completed_events: TASKS, over_once: 0, other_status: 0 });
    const reruns = [...runs.values()].filter((n) => n > 1).length;
    console.log(
      `e2e: ${TASKS} tasks, ${AGENTS} SDK agents, 2 replicas (one SIGKILLed at ${killedAt} completed): all completed once in ${elapsed} ms; ` +
        `${runs.size} tasks handled, ${reruns} handled more than once (reassigned), ${sdkErrors.length} SDK notices`,
    );
  }, 300_000);
});
