import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient, type ApiResponse } from '../helpers/http.js';
import { settleAssignment } from '../helpers/jobs.js';
import { assignWakeupsDuring } from '../helpers/wakeups.js';
import { waitFor } from '../helpers/wait.js';

let database: TestDatabase;
let first: TestDispatch;
let second: TestDispatch;
let api: ApiClient;
let api2: ApiClient;

beforeAll(async () => {
  database = await createTestDatabase();
  // Two replicas on one database: drain state and limits must hold across both.
  [first, second] = await Promise.all([startTestDispatch(database.url), startTestDispatch(database.url)]);
  api = apiClient(first.baseUrl);
  api2 = apiClient(second.baseUrl);
});
afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
  await database?.drop();
});

let counter = 0;
const fresh = (label: string) => `${label}-${(counter += 1)}-${Math.random().toString(36).slice(2, 7)}`;

async function register(name: string, scopes: string[], extra: Record<string, unknown> = {}) {
  const response = await api('PUT', `/api/v1/agents/${name}`, { agent: name, body: { capabilities: scopes, ...extra } });
  expect(response.status).toBe(200);
}
async function createTask(scope: string, extra: Record<string, unknown> = {}) {
  const response = await api2('POST', '/api/v1/tasks', { body: { title: 't', scope, ...extra } });
  expect(response.status).toBe(201);
  return response.body.id as string;
}
const getTask = async (id: string) => (await api('GET', `/api/v1/tasks/${id}`)).body;
const assigned = (id: string, what = 'assignment') =>
  waitFor(async () => {
    const task = await getTask(id);
    return task.status === 'assigned' ? task : undefined;
  }, { what, timeoutMs: 5_000 });

/** Waits until the broker has looked at the task and left it pending (unmatched, or a placement). */
async function settledPending(id: string) {
  await settleAssignment([first, second]);
  expect((await getTask(id)).status).toBe('pending');
}

describe('capability matching and scoring through the whole flow', () => {
  it('only assigns to agents whose capabilities contain the scope, case-insensitively', async () => {
    const scope = fresh('Match');
    await register(fresh('other'), ['something-else']);
    const capable = fresh('capable');
    await register(capable, [scope.toUpperCase()]);
    expect((await assigned(await createTask(scope))).assignee).toBe(capable);
  });

  it('prefers ready over sleeping over busy', async () => {
    const scope = fresh('pref');
    const busy = fresh('busy');
    const sleepy = fresh('sleepy');
    const ready = fresh('ready');
    await register(busy, [scope], { status: 'busy' });
    await register(sleepy, [scope], { status: 'sleeping' });
    await register(ready, [scope]);
    const task = await assigned(await createTask(scope));
    expect(task.assignee).toBe(ready);
    const placement = (await api('GET', `/api/v1/tasks/${task.id}/placement`)).body.decision;
    expect(placement.candidates.map((c: any) => [c.agent, c.outcome, c.score])).toEqual([
      [ready, 'won', 1.2],
      [sleepy, 'lower_score', 0.96],
      [busy, 'lower_score', 0.6],
    ]);
    expect(placement).toMatchObject({ considered: 3, outcomes: { won: 1, lower_score: 2 } });
  });

  it('records the winner and two runners-up with each assignment, and counts the rest by outcome', async () => {
    const scope = fresh('audit');
    const names = [fresh('a'), fresh('b'), fresh('c'), fresh('d')];
    for (const name of names) await register(name, [scope]);
    await register(fresh('stopped'), [scope], { status: 'stopped' });
    const task = await assigned(await createTask(scope));
    const placement = (await api('GET', `/api/v1/tasks/${task.id}/placement`)).body.decision;
    expect(placement.candidates).toHaveLength(3);
    expect(placement.candidates[0]).toMatchObject({ agent: task.assignee, outcome: 'won' });
    expect(placement).toMatchObject({ winner: task.assignee, considered: 5, outcomes: { won: 1, tie_break: 3, stopped: 1 } });
  });

  it('uses a busy agent only while it is under its limit', async () => {
    const scope = fresh('busy-limit');
    const busy = fresh('busy');
    await register(busy, [scope], { status: 'busy', max_concurrent: 2 });
    const ids = [await createTask(scope), await createTask(scope), await createTask(scope)];
    await assigned(ids[0]!);
    await assigned(ids[1]!);
    await settledPending(ids[2]!);
    const why = (await api('GET', `/api/v1/tasks/${ids[2]}/placement`)).body;
    expect(why.candidates).toEqual([expect.objectContaining({ agent: busy, outcome: 'at_limit', active_tasks: 2, max_concurrent: 2 })]);
    await api('POST', `/api/v1/tasks/${ids[0]}/complete`, { agent: busy, body: { result: null } });
    expect((await assigned(ids[2]!, 'assignment after a slot frees')).assignee).toBe(busy);
  });

  it('never assigns to degraded, stopped or unknown agents', async () => {
    const scope = fresh('unhealthy');
    await register(fresh('degraded'), [scope], { status: 'degraded' });
    await register(fresh('stopped'), [scope], { status: 'stopped' });
    await sql`INSERT INTO dispatch_agents (name, capabilities, status) VALUES (${fresh('unknown')}, ${[scope]}::text[], 'unknown')`.execute(database.handle.db);
    const id = await createTask(scope);
    await settledPending(id);
    const why = (await api('GET', `/api/v1/tasks/${id}/placement`)).body;
    expect(why.candidates.map((c: any) => c.outcome).sort()).toEqual(['degraded', 'stopped', 'unknown']);
    expect(why.waiting_because.join(' ')).toMatch(/drained, stopped, unhealthy or at its limit/);
  });

  it('takes priority 1 before older priority 3 work', async () => {
    const scope = fresh('prio');
    const low = await createTask(scope, { priority: 3 });
    const urgent = await createTask(scope, { priority: 1 });
    await register(fresh('single'), [scope], { max_concurrent: 1 });
    await assigned(urgent, 'urgent first');
    expect((await getTask(low)).status).toBe('pending');
  });
});

describe('registration', () => {
  it('answers each of many agents registering at once with its own row, capabilities and limit', async () => {
    const scope = fresh('swarm');
    const names = Array.from({ length: 30 }, (_, i) => fresh(`member${i}`));
    const answers = await Promise.all(
      names.map((name, i) =>
        api('PUT', `/api/v1/agents/${name}`, { agent: name, body: { capabilities: [scope, `extra-${i}`], status: 'ready', max_concurrent: i + 1 } }),
      ),
    );
    answers.forEach((answer, i) => {
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ name: names[i], capabilities: [scope, `extra-${i}`], max_concurrent: i + 1, status: 'ready' });
    });
    // The same agent twice at once: both answered, the row holds one of the two.
    const twice = names[0]!;
    const [a, b] = await Promise.all(
      ['busy', 'sleeping'].map((status) => api('PUT', `/api/v1/agents/${twice}`, { agent: twice, body: { capabilities: [scope], status } })),
    );
    expect([a!.status, b!.status]).toEqual([200, 200]);
    const listed = (await api('GET', '/api/v1/agents', { admin: true })).body.agents.find((x: any) => x.name === twice);
    expect(['busy', 'sleeping']).toContain(listed.status);
  });
});

describe('drain', () => {
  it('a drained agent keeps its tasks but gets no new ones on any replica, until undrained', async () => {
    const scope = fresh('drain');
    const agent = fresh('drainee');
    await register(agent, [scope], { max_concurrent: 10 });
    const held = await assigned(await createTask(scope));
    const drained = await api2('POST', `/api/v1/agents/${agent}/drain`, { admin: true });
    expect(drained.body).toMatchObject({ name: agent, drained: true });
    const waiting = await createTask(scope);
    await settledPending(waiting);
    expect((await getTask(held.id)).status).toBe('assigned');
    const list = (await api('GET', '/api/v1/agents', { admin: true })).body.agents;
    expect(list.find((a: any) => a.name === agent)).toMatchObject({ drained: true, active_tasks: 1, capabilities: [scope] });
    await api('DELETE', `/api/v1/agents/${agent}/drain`, { admin: true });
    expect((await assigned(waiting, 'assignment after undrain')).assignee).toBe(agent);
  });

  it('refuses drain without the admin token', async () => {
    expect((await api('POST', '/api/v1/agents/x/drain')).status).toBe(401);
    expect((await api('POST', '/api/v1/agents/x/drain', { token: 'wrong' })).status).toBe(401);
  });
});

describe('unmatched', () => {
  const unmatchedAt = async (id: string) => (await api('GET', `/api/v1/tasks/${id}/placement`)).body.unmatched_at as string | null;

  it('records unmatched once per task however many passes run, and shows it on the placement', async () => {
    const id = await createTask(fresh('nobody'));
    await waitFor(async () => (await getTask(id)) && (await api('GET', `/api/v1/tasks/${id}/placement`)).body.unmatched_at, { what: 'unmatched' });
    // Several more passes (ticks and other tasks) must not record it again.
    for (let i = 0; i < 3; i += 1) await sql`SELECT dispatch_request_assignment()`.execute(database.handle.db);
    await createTask(fresh('nobody-else'));
    await settledPending(id);
    const events = (await api('GET', `/api/v1/tasks/${id}/events`)).body.events.map((e: any) => e.event);
    expect(events.filter((e: string) => e === 'unmatched')).toHaveLength(1);
  });

  it('records a task nobody serves as unmatched when it is created, and wakes no assigner for it', async () => {
    let created: ApiResponse | undefined;
    const wakeups = await assignWakeupsDuring(database.url, database.handle.db, async () => {
      created = await api2('POST', '/api/v1/tasks', { body: { title: 't', scope: fresh('orphan') } });
    });
    expect(created!.status).toBe(201);
    expect(await unmatchedAt(created!.body.id)).toEqual(expect.any(String));
    const events = (await api('GET', `/api/v1/tasks/${created!.body.id}/events`)).body.events.map((e: any) => e.event);
    expect(events).toEqual(['created', 'unmatched']);
    expect(wakeups).toEqual([]);
  });

  it('records unmatched later for a waiting task whose only capable agent is drained', async () => {
    const scope = fresh('lost');
    const agent = fresh('only');
    await register(agent, [scope], { max_concurrent: 1 });
    const held = (await assigned(await createTask(scope))).id as string;
    const waiting = await api2('POST', '/api/v1/tasks', { body: { title: 't', scope } });
    expect(await unmatchedAt(waiting.body.id)).toBeNull();
    await api('POST', `/api/v1/agents/${agent}/drain`, { admin: true });
    // The tick's unmatched pass notices (run here on both replicas rather than waiting for a
    // tick, which may also run meanwhile); the trail below shows it was recorded once.
    await Promise.all([first, second].map((replica) => replica.dispatch.assignment.assigner.recordUnmatched()));
    expect(await unmatchedAt(waiting.body.id)).toEqual(expect.any(String));
    const trail = async (id: string) => (await api('GET', `/api/v1/tasks/${id}/events`)).body.events.map((e: any) => e.event);
    expect(await trail(waiting.body.id)).toEqual(['created', 'unmatched']);
    expect(await trail(held)).not.toContain('unmatched');
  });
});

describe('wake-up protocol', () => {
  it('a client holding a transaction open after inserting a task stalls nobody, and its task is placed after commit', async () => {
    const scope = fresh('long-tx');
    await register(fresh('worker'), [scope], { max_concurrent: 10 });
    const client = await database.handle.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ id: string }>(
        `INSERT INTO dispatch_tasks (requester, title, scope) VALUES ('dba', 'by hand', $1) RETURNING id`,
        [scope],
      );
      const meanwhile = await createTask(scope);
      await assigned(meanwhile, 'assignment while a writer transaction is open');
      await client.query('COMMIT');
      await assigned(rows[0]!.id, 'assignment of the hand-inserted task after commit');
    } finally {
      client.release();
    }
  });
});
