import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { REPLICA_ADMIN_TOKEN, spawnReplicas, type ReplicaProcess } from '../helpers/replica-process.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The rate limit holds for the deployment, not per replica: two replicas on one database, each
 * enforcing its share (limit / replicas alive). One identity flooding both gets about the limit
 * in total while another identity is not refused once; calls that fail authentication spend
 * their address's budget, after which they get 429 instead of 401.
 */
const LIMIT = 60;
let database: TestDatabase;
let replicas: ReplicaProcess[];

async function call(replica: ReplicaProcess, agent: string | null): Promise<number> {
  const headers: Record<string, string> = agent === null ? {} : { 'x-agent-id': agent };
  const response = await fetch(`${replica.apiUrl}/api/v1/tasks?limit=1`, { headers });
  await response.arrayBuffer();
  return response.status;
}

async function liveReplicasSeenBy(replica: ReplicaProcess): Promise<number> {
  const text = await (await fetch(`${replica.opsUrl}/metrics`)).text();
  return Number(/^dispatch_replicas_live (\d+)/m.exec(text)?.[1] ?? 0);
}

beforeAll(async () => {
  database = await createTestDatabase();
  replicas = await spawnReplicas(2, {
    databaseUrl: database.url,
    name: 'rate',
    config: { server: { rate_limit_per_minute: LIMIT }, worker: { heartbeat_interval_ms: 200 } },
  });
  for (const replica of replicas) await waitFor(async () => (await liveReplicasSeenBy(replica)) === 2 || undefined, { what: `${replica.name} counting 2 replicas` });
}, 120_000);
afterAll(async () => {
  await Promise.all((replicas ?? []).map((r) => r.stop()));
  await database?.drop();
});

describe('rate limit across replicas', () => {
  it('gives one identity about the configured limit in total over both replicas, and none of it to another identity', async () => {
    const started = Date.now();
    const flood = await Promise.all(Array.from({ length: 3 * LIMIT }, (_, i) => call(replicas[i % 2]!, 'flooder')));
    const bystander = await Promise.all(Array.from({ length: 20 }, (_, i) => call(replicas[i % 2]!, 'bystander')));
    const seconds = (Date.now() - started) / 1000;
    const allowed = flood.filter((s) => s === 200).length;
    // Each replica's bucket holds LIMIT / 2 and refills at LIMIT / 2 a minute.
    expect(allowed).toBeGreaterThanOrEqual(LIMIT - 2);
    expect(allowed).toBeLessThanOrEqual(LIMIT + Math.ceil((LIMIT / 60) * seconds) + 1);
    expect(flood.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
    expect(bystander).toEqual(Array.from({ length: 20 }, () => 200));
  });

  it('answers 429 instead of 401 once an address has spent its budget of failed calls, and never to a caller that authenticates', async () => {
    const replica = replicas[0]!;
    const statuses = await Promise.all(Array.from({ length: LIMIT }, () => call(replica, null)));
    // This replica's share of the address budget is LIMIT / 2 failures (plus what refills meanwhile).
    const unauthorized = statuses.filter((s) => s === 401).length;
    expect(unauthorized, JSON.stringify(statuses)).toBeGreaterThanOrEqual(LIMIT / 2);
    expect(unauthorized, JSON.stringify(statuses)).toBeLessThanOrEqual(LIMIT / 2 + 2);
    expect(statuses.filter((s) => s === 429).length, JSON.stringify(statuses)).toBe(LIMIT - unauthorized);
    // Same address (loopback), but a caller that proves who it is: not touched by that budget.
    expect(await call(replica, 'well-behaved')).toBe(200);
  });
});

describe('revocation across replicas', () => {
  let tokenReplicas: ReplicaProcess[];
  beforeAll(async () => {
    tokenReplicas = await spawnReplicas(2, { databaseUrl: database.url, name: 'revoke', config: { auth: { mode: 'token' } } });
  }, 120_000);
  afterAll(async () => {
    await Promise.all((tokenReplicas ?? []).map((r) => r.stop()));
  });

  it('refuses a credential revoked on one replica on the other within a second', async () => {
    const [a, b] = tokenReplicas as [ReplicaProcess, ReplicaProcess];
    const admin = { authorization: `Bearer ${REPLICA_ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const issued = await (await fetch(`${a.apiUrl}/api/v1/agents/planner-7/credentials`, { method: 'POST', headers: admin, body: JSON.stringify({ role: 'requester' }) })).json() as { id: string; token: string };
    const asPlanner = () => fetch(`${b.apiUrl}/api/v1/tasks?limit=1`, { headers: { authorization: `Bearer ${issued.token}` } }).then((r) => r.status);
    expect(await asPlanner()).toBe(200);
    const revoked = await fetch(`${a.apiUrl}/api/v1/agents/planner-7/credentials/${issued.id}`, { method: 'DELETE', headers: admin });
    expect(revoked.status).toBe(200);
    const revokedAt = Date.now();
    await waitFor(async () => ((await asPlanner()) === 401 ? true : undefined), { what: 'replica B refusing the revoked token', timeoutMs: 5_000, intervalMs: 25 });
    expect(Date.now() - revokedAt).toBeLessThan(1_000);
  });
});
