import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { auditAssignments } from '../helpers/assignment-audit.js';
import { errorLogLines, type ReplicaProcess } from '../helpers/replica-process.js';
import { useReplicaSwarm } from '../helpers/replica-swarm.js';
import { createTasksOverHttp, overlappingSwarm } from '../helpers/simulated-agents.js';
import { insertTasks } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Three Dispatch processes on one database place 5,000 tasks on 50 agents that poll, report
 * progress and complete over REST through all three. The audit trail must show no task held
 * twice and no agent over its limit, and every task must end completed.
 */

const REPLICAS = 3;
const AGENTS = 50;
const TASKS = 5_000;
const LIMIT = 3;
const SCOPES = ['alpha', 'beta', 'gamma'] as const;
const HTTP_TASKS = 1_000;
const BULK_BATCH = 200;

const swarm = useReplicaSwarm({ name: 'race', replicas: REPLICAS, agentLimit: LIMIT });

async function remainingTasks(): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status <> 'completed'`.execute(swarm.db);
  return rows[0]!.n;
}

async function assignedBy(replica: ReplicaProcess): Promise<number> {
  const text = await (await fetch(`${replica.opsUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('dispatch_task_transitions_total{event="assigned"}'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('assignment across replicas in separate processes', () => {
  it(`places ${TASKS} tasks on ${AGENTS} agents with no double assignment and no limit breach`, async () => {
    const urls = swarm.replicas.map((r) => r.apiUrl);
    let allDone = false;
    const agents = await swarm.startAgents(
      overlappingSwarm(SCOPES, {
        urls,
        count: AGENTS,
        namePrefix: 'race-agent',
        // Every fifth agent brings its own, lower limit: the per-agent override must hold too.
        maxConcurrent: (i) => (i % 5 === 0 ? 2 : undefined),
        until: () => allDone,
      }),
    );
    const started = Date.now();
    // A fifth arrive over REST through every replica (each insert fires the wake-up path in its
    // own process); the rest land in bulk, faster than the agents finish, so the queue stays
    // deep and every agent keeps bumping into its limit while all replicas assign.
    const overHttp = createTasksOverHttp(urls, {
      count: HTTP_TASKS,
      concurrency: 12,
      scope: (i) => SCOPES[i % 3]!,
      priority: (i) => 1 + (i % 5),
    });
    for (let batch = 0; batch < (TASKS - HTTP_TASKS) / BULK_BATCH; batch++) {
      await insertTasks(swarm.db, BULK_BATCH, { scope: SCOPES[batch % 3]!, priority: 1 + (batch % 5), requester: 'bulk' });
      await new Promise((r) => setTimeout(r, 100));
    }
    await overHttp;
    const createdMs = Date.now() - started;
    await waitFor(async () => (await remainingTasks()) === 0, { timeoutMs: 150_000, intervalMs: 250, what: 'every task completed' });
    allDone = true;
    const stats = await agents.stop();
    const elapsedMs = Date.now() - started;

    const audit = await auditAssignments(swarm.db, LIMIT);
    const perReplica = await Promise.all(swarm.replicas.map(assignedBy));
    console.log(
      `race: ${TASKS} tasks created in ${createdMs} ms, all completed in ${elapsedMs} ms; ` +
        `assignments per replica ${perReplica.join('/')}; agents: ${JSON.stringify(stats)}; ` +
        `peak held ${audit.peakHeld}, ${audit.agentsAtLimit} agents reached their limit`,
    );

    expect(audit.doubleAssignments).toEqual([]);
    expect(audit.limitBreaches).toEqual([]);
    expect(audit.attemptMismatches).toEqual([]);
    expect(audit.assignments).toBe(TASKS);
    // The limit was actually reached, by many agents (the race was real, not a trickle).
    expect(audit.agentsAtLimit).toBeGreaterThan(AGENTS / 2);
    expect(perReplica.reduce((a, b) => a + b, 0)).toBe(TASKS);
    expect(perReplica.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(stats.completed).toBe(TASKS);
    expect(stats.httpErrors).toBe(0);

    const counters = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_agent_load WHERE active_tasks <> 0`.execute(swarm.db);
    expect(counters.rows[0]!.n).toBe(0);
    for (const replica of swarm.replicas) expect(errorLogLines(replica.output())).toEqual([]);
  }, 180_000);
});
