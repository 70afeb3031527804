import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAgents } from '../../src/agents/agent.queries.js';
import { completeTask } from '../../src/tasks/task.queries.js';
import { auditAssignments } from '../helpers/assignment-audit.js';
import { errorLogLines, ownerOfLocalPort, type ReplicaProcess } from '../helpers/replica-process.js';
import { useReplicaSwarm } from '../helpers/replica-swarm.js';
import { createTasksOverHttp, SimulatedAgents, overlappingSwarm } from '../helpers/simulated-agents.js';
import { assignDirectly, insertTasks } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Replicas die. One SIGKILLed in the middle of a run (the active assigner, inside a batch) must
 * not stall the others: they finish every task within 60 s, and release the dead one's
 * job locks within seconds (worker.dead_after_ms is 5 s here). One SIGTERMed must finish what it
 * is doing, release everything, and exit 0.
 */

const LIMIT = 3;
const AGENTS = 50;
const SCOPES = ['alpha', 'beta', 'gamma'] as const;
const DEAD_AFTER_MS = 5_000;

const swarm = useReplicaSwarm({
  name: 'kill',
  replicas: 3,
  agentLimit: LIMIT,
  config: { worker: { dead_after_ms: DEAD_AFTER_MS }, server: { shutdown_grace_ms: 10_000 } },
});
let agents: SimulatedAgents | undefined;
let finished = false;

beforeAll(async () => {
  agents = await swarm.startAgents(
    overlappingSwarm(SCOPES, { urls: swarm.replicas.map((r) => r.apiUrl), count: AGENTS, namePrefix: 'kill-agent', until: () => finished }),
  );
});

afterAll(() => {
  finished = true;
});

const db = () => swarm.db;
const replicas = () => swarm.replicas;

async function unfinished(): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status <> 'completed'`.execute(db());
  return rows[0]!.n;
}

async function completed(): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status = 'completed'`.execute(db());
  return rows[0]!.n;
}

/** The graphile-worker ids a replica process registered (its replica id carries its pid). */
async function workerIdsOf(replica: ReplicaProcess): Promise<string[]> {
  const { rows } = await sql<{ worker_ids: string[] }>`
    SELECT worker_ids FROM dispatch_replicas WHERE id LIKE ${`%-${replica.pid}-%`}`.execute(db());
  return rows.flatMap((r) => r.worker_ids);
}

async function jobsLockedBy(workerIds: string[]): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE locked_by = ANY (${workerIds}::text[])`.execute(db());
  return rows[0]!.n;
}

/** The replica at the other end of the PostgreSQL backend `pid` (its connection's client port). */
async function replicaOfBackend(pid: number): Promise<ReplicaProcess | undefined> {
  const { rows } = await sql<{ port: number | null }>`SELECT client_port AS port FROM pg_stat_activity WHERE pid = ${pid}`.execute(db());
  const port = rows[0]?.port;
  return port ? ownerOfLocalPort(port, replicas()) : undefined;
}

function expectCleanAudit(audit: Awaited<ReturnType<typeof auditAssignments>>) {
  expect(audit.doubleAssignments).toEqual([]);
  expect(audit.limitBreaches).toEqual([]);
  expect(audit.attemptMismatches).toEqual([]);
}

describe('replica failure', () => {
  it('SIGKILL of one replica mid-run: the others finish every task within 60 s and free its job locks', async () => {
    const TASKS = 2_000;
    for (let batch = 0; batch < 8; batch++) {
      await insertTasks(db(), (TASKS - 200) / 8, { scope: SCOPES[batch % 3]!, priority: 1 + (batch % 5), requester: 'bulk' });
    }
    await createTasksOverHttp(replicas().map((r) => r.apiUrl), { count: 200, scope: (i) => SCOPES[i % 3]!, concurrency: 8 });
    await waitFor(async () => (await completed()) >= TASKS / 4, { timeoutMs: 60_000, intervalMs: 20, what: 'a quarter of the tasks done' });

    // Catch the active assigner in the act. A bait agent serves a scope nobody asks for, so it
    // stays free and every batch locks it (lockAgentsAndClaim); with its row held here, the
    // replica draining stops inside its batch, holding the active lock, until the row is let go.
    await registerAgents(db(), [{ name: 'kill-bait', capabilities: ['nobody-asks'], status: 'ready', maxConcurrent: null }]);
    const blocker = await db().startTransaction().execute();
    const { rows: blockerRows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(blocker);
    await sql`SELECT 1 FROM dispatch_agents WHERE name = 'kill-bait' FOR UPDATE`.execute(blocker);
    // The backend of a batch waiting on the bait, and the replica it belongs to: the active assigner.
    const waitingAssigner = async () => {
      const { rows } = await sql<{ pid: number }>`
        SELECT pid FROM pg_stat_activity
         WHERE ${blockerRows[0]!.pid}::int = ANY (pg_blocking_pids(pid)) AND query LIKE '%dispatch_lock_agents_and_claim(%'`.execute(db());
      return rows[0] ? await replicaOfBackend(rows[0].pid) : undefined;
    };
    let victim: ReplicaProcess;
    try {
      victim = await waitFor(waitingAssigner, { timeoutMs: 15_000, intervalMs: 20, what: 'a replica whose assignment batch waits on the bait' });
    } catch (error) {
      await blocker.rollback().execute();
      throw error;
    }
    const victimWorkers = await workerIdsOf(victim);
    expect(victimWorkers.length).toBeGreaterThan(0);
    // What a worker that dies in the middle of a job leaves behind: the job locked in its name.
    // (Assignment itself no longer runs as a job when work appears: migration 0019.)
    await sql`SELECT graphile_worker.add_job('kill:probe', run_at := now() + interval '1 hour', job_key := 'kill-probe')`.execute(db());
    await sql`UPDATE graphile_worker._private_jobs SET locked_by = ${victimWorkers[0]!}, locked_at = now() WHERE key = 'kill-probe'`.execute(db());
    victim.kill('SIGKILL');
    const killedAt = Date.now();
    const exit = await victim.exited;
    expect(exit.signal).toBe('SIGKILL');
    // The job stays locked in its name until the dead-replica sweep frees it.
    const lockedAtKill = await jobsLockedBy(victimWorkers);
    await blocker.rollback().execute();
    expect(lockedAtKill).toBeGreaterThan(0);
    const leftAtKill = await unfinished();
    expect(leftAtKill).toBeGreaterThan(0);

    await waitFor(async () => (await unfinished()) === 0, { timeoutMs: 60_000, intervalMs: 100, what: 'every task completed after the kill' });
    const finishedMs = Date.now() - killedAt;
    // Its locks (if it held any) and its registration go once it has been silent dead_after_ms.
    await waitFor(async () => (await jobsLockedBy(victimWorkers)) === 0, { timeoutMs: DEAD_AFTER_MS + 10_000, intervalMs: 200, what: 'dead replica locks released' });
    await waitFor(
      async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_replicas WHERE id LIKE ${`%-${victim.pid}-%`}`.execute(db())).rows[0]!.n === 0,
      { timeoutMs: DEAD_AFTER_MS + 10_000, intervalMs: 200, what: 'dead replica forgotten' },
    );
    console.log(
      `kill: killed the active assigner (${lockedAtKill} job locks) with ${leftAtKill} tasks unfinished; ` +
        `the others finished them in ${finishedMs} ms; agents ${JSON.stringify(agents!.stats)}`,
    );
    expect(finishedMs).toBeLessThan(60_000);
    expectCleanAudit(await auditAssignments(db(), LIMIT));
  }, 150_000);

  it('SIGTERM: a replica finishes in-flight work, releases its locks and exits 0 while the last one carries on', async () => {
    const survivors = replicas().filter((r) => !r.hasExited());
    const [leaving, staying] = survivors as [ReplicaProcess, ReplicaProcess];
    expect(staying).toBeDefined();
    const leavingWorkers = await workerIdsOf(leaving);
    const TASKS = 600;
    for (let batch = 0; batch < 3; batch++) await insertTasks(db(), TASKS / 3, { scope: SCOPES[batch]!, requester: 'bulk' });
    await waitFor(async () => (await completed()) >= 2_000 + TASKS / 4, { timeoutMs: 30_000, intervalMs: 20, what: 'work under way' });

    // Requests already being served when the signal lands must still get their answers. To be
    // sure they are being served, each waits in the database on a task row the test holds.
    const held = await insertTasks(db(), 3, { scope: 'held', requester: 'bulk' });
    for (const id of held) await assignDirectly(db(), id, 'observer');
    const holder = await db().startTransaction().execute();
    await sql`SELECT 1 FROM dispatch_tasks WHERE id = ANY (${held}::uuid[]) FOR UPDATE`.execute(holder);
    const inFlight = held.map((id) =>
      fetch(`${leaving.apiUrl}/api/v1/tasks/${id}/progress`, {
        method: 'POST',
        headers: { 'x-agent-id': 'observer', 'content-type': 'application/json' },
        body: JSON.stringify({ attempt: 1, message: 'still here' }),
      }).then(
        (r) => r.status,
        (error: unknown) => `no answer: ${String(error)}`,
      ),
    );
    await waitFor(
      async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%dispatch_tasks%'`.execute(db());
        return rows[0]!.n === held.length;
      },
      { what: 'the requests waiting in the database' },
    );
    leaving.kill('SIGTERM');
    // The shutdown is under way once the replica refuses new connections; only then let go.
    await waitFor(
      () =>
        fetch(`${leaving.opsUrl}/health`).then(
          () => false,
          () => true,
        ),
      { what: 'the replica to stop accepting connections' },
    );
    await holder.commit().execute();
    const statuses = await Promise.all(inFlight);
    for (const id of held) expect(await completeTask(db(), { taskId: id, agent: 'observer', attempt: 1 }, null)).toBeDefined();
    const exit = await leaving.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(statuses).toEqual(held.map(() => 200));
    // It said goodbye: no job of its workers stays locked, its heartbeat row is gone.
    expect(await jobsLockedBy(leavingWorkers)).toBe(0);
    const left = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_replicas WHERE id LIKE ${`%-${leaving.pid}-%`}`.execute(db());
    expect(left.rows[0]!.n).toBe(0);
    expect(errorLogLines(leaving.output())).toEqual([]);

    await waitFor(async () => (await unfinished()) === 0, { timeoutMs: 60_000, intervalMs: 100, what: 'the last replica finishing everything' });
    finished = true;
    expectCleanAudit(await auditAssignments(db(), LIMIT));
  }, 120_000);
});
