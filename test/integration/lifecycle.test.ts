import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEADLINE_NOTICE_WITHIN_MS, NOTIFY_CHANNEL } from '../../src/db/contract.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { jobQueued, waitForJobRun } from '../helpers/jobs.js';
import { waitFor } from '../helpers/wait.js';

let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;

const lifecycleConfig = {
  worker: { poll_interval_ms: 50 },
  lifecycle: { retry_backoff_base_ms: 20, retry_backoff_max_ms: 50, sweep_interval_ms: 200, reassign_budget: 2 },
  assignment: { wake_timeout_ms: 400, wake_cooldown_ms: 60_000, agent_heartbeat_timeout_ms: 60_000 },
};

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, lifecycleConfig);
  api = apiClient(dispatch.baseUrl);
});
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

let scopeCounter = 0;
/** Each test uses its own scope so agents of one test never take another test's tasks. */
function freshScope(): string {
  scopeCounter += 1;
  return `scope-${scopeCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

async function register(name: string, scope: string, extra: Record<string, unknown> = {}) {
  const response = await api('PUT', `/api/v1/agents/${name}`, { agent: name, body: { capabilities: [scope], ...extra } });
  expect(response.status).toBe(200);
}

async function createTask(body: Record<string, unknown>) {
  const response = await api('POST', '/api/v1/tasks', { body: { title: 'work', ...body } });
  expect(response.status).toBe(201);
  return response.body.id as string;
}

const getTask = async (id: string) => (await api('GET', `/api/v1/tasks/${id}`)).body;
const eventsOf = async (id: string) => ((await api('GET', `/api/v1/tasks/${id}/events`)).body.events as { event: string; agent_id: string; attempt: number }[]);

async function deadlineOf(id: string): Promise<Date> {
  const row = await database.handle.db.selectFrom('dispatch_tasks').select('deadline_at').where('id', '=', id).executeTakeFirstOrThrow();
  return row.deadline_at!;
}

/** Whether the database clock (the one deadlines are kept by) is past `at` + `byMs`. */
async function databasePassed(at: Date, byMs: number): Promise<boolean> {
  const { rows } = await sql<{ past: boolean }>`SELECT now() > ${at}::timestamptz + make_interval(secs => ${byMs / 1000}) AS past`.execute(database.handle.db);
  return rows[0]!.past;
}

function untilTask(id: string, predicate: (task: any) => boolean, what: string, timeoutMs = 8_000) {
  return waitFor(async () => {
    const task = await getTask(id);
    return predicate(task) ? task : undefined;
  }, { what, timeoutMs });
}

describe('timeouts', () => {
  it('retries a timed-out attempt on another agent, then ends as timeout when retries run out', async () => {
    const scope = freshScope();
    await register(`${scope}-a`, scope);
    await register(`${scope}-b`, scope);
    const id = await createTask({ scope, timeout_ms: 150, max_retries: 1 });
    const second = await untilTask(id, (t) => t.attempt === 2, 'retry assignment');
    expect(second.retry_count).toBe(1);
    const assignees = (await eventsOf(id)).filter((e) => e.event === 'assigned').map((e) => e.agent_id);
    expect(assignees).toHaveLength(2);
    expect(assignees[1]).not.toBe(assignees[0]);
    const final = await untilTask(id, (t) => t.status === 'timeout', 'exhausted timeout');
    expect(final.error).toMatch(/timed out/);
    expect(final.retry_count).toBe(1);
    const names = (await eventsOf(id)).map((e) => e.event);
    expect(names.filter((n) => n === 'timeout_retry')).toHaveLength(1);
    expect(names.filter((n) => n === 'timeout_exhausted')).toHaveLength(1);
  });

  it('counts the execution timeout from the start, and progress keeps a heartbeat task alive', async () => {
    const scope = freshScope();
    const agent = `${scope}-a`;
    await register(agent, scope);
    const id = await createTask({ scope, timeout_ms: 60_000, heartbeat_timeout_ms: 1_000, max_retries: 0 });
    await untilTask(id, (t) => t.status === 'assigned', 'assignment');
    const firstDeadline = await deadlineOf(id);
    // The agent reports every 250 ms (a quarter of the heartbeat timeout, so a busy machine's
    // delays never stretch a gap past it) until the deadline the task had before any progress is
    // well past: without the reports it would have timed out by then.
    for (let step = 0; !(await databasePassed(firstDeadline, 1_000)); step += 1) {
      const progress = await api('POST', `/api/v1/tasks/${id}/progress`, { agent, body: { step } });
      expect(progress.status).toBe(200);
      const { last_progress_at: reported } = await database.handle.db
        .selectFrom('dispatch_tasks')
        .select('last_progress_at')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      await waitFor(() => databasePassed(reported!, 250), { what: 'the next report due' });
    }
    expect((await getTask(id)).status).toBe('running');
    const timedOut = await untilTask(id, (t) => t.status === 'timeout', 'heartbeat timeout after silence');
    expect(timedOut.error).toMatch(/no progress/);
  });

  it('raises the waiting-too-long alarm once for a task nobody takes, without failing it', async () => {
    const id = await createTask({ scope: freshScope(), start_timeout_ms: 100 });
    await waitFor(async () => (await eventsOf(id)).some((e) => e.event === 'start_overdue'), { what: 'start_overdue event' });
    // A later task's alarm shows a later sweep has run, which could have raised the first one again.
    const marker = await createTask({ scope: freshScope(), start_timeout_ms: 100 });
    await waitFor(async () => (await eventsOf(marker)).some((e) => e.event === 'start_overdue'), { what: 'a later sweep' });
    expect((await eventsOf(id)).filter((e) => e.event === 'start_overdue')).toHaveLength(1);
    expect((await getTask(id)).status).toBe('pending');
    const metrics = await fetch(`${dispatch.opsUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/dispatch_tasks_waiting_too_long_total [1-9]/);
  });
});

describe('failures and leases', () => {
  it('retries a failure on a different agent, and a non-retryable failure ends the task', async () => {
    const scope = freshScope();
    await register(`${scope}-a`, scope);
    await register(`${scope}-b`, scope);
    const id = await createTask({ scope, max_retries: 2 });
    const first = await untilTask(id, (t) => t.status === 'assigned', 'assignment');
    const failed = await api('POST', `/api/v1/tasks/${id}/fail`, { agent: first.assignee, body: { error: 'flaky' } });
    expect(failed.body.status).toBe('pending');
    const second = await untilTask(id, (t) => t.status === 'assigned' && t.attempt === 2, 'retry');
    expect(second.assignee).not.toBe(first.assignee);
    const final = await api('POST', `/api/v1/tasks/${id}/fail`, { agent: second.assignee, body: { error: 'bad input', retryable: false } });
    expect(final.body).toMatchObject({ status: 'failed', error: 'bad input', retry_count: 1 });
  });

  it('rejects a zombie completing an earlier attempt and changes nothing', async () => {
    const scope = freshScope();
    const zombie = `${scope}-zombie`;
    await register(zombie, scope);
    const id = await createTask({ scope, max_retries: 1 });
    await untilTask(id, (t) => t.assignee === zombie, 'assignment to the zombie');
    await api('POST', `/api/v1/tasks/${id}/fail`, { agent: zombie, body: { error: 'lost it' } });
    // The same agent gets attempt 2 (no other capable agent); a late call for attempt 1 must fail.
    const retried = await untilTask(id, (t) => t.status === 'assigned' && t.attempt === 2, 'second attempt');
    const before = await getTask(id);
    const late = await api('POST', `/api/v1/tasks/${id}/complete`, { agent: zombie, body: { result: { stale: true }, attempt: 1 } });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('stale_attempt');
    const after = await getTask(id);
    expect(after).toMatchObject({ status: 'assigned', attempt: retried.attempt, result: null, updated_at: before.updated_at });
    const ok = await api('POST', `/api/v1/tasks/${id}/complete`, { agent: zombie, body: { result: { fresh: true }, attempt: 2 } });
    expect(ok.status).toBe(200);
  });

  it('cancelling a running task frees the agent at once and rejects its late completion', async () => {
    const scope = freshScope();
    const agent = `${scope}-a`;
    await register(agent, scope, { max_concurrent: 1 });
    const id = await createTask({ scope });
    await untilTask(id, (t) => t.status === 'assigned', 'assignment');
    await api('POST', `/api/v1/tasks/${id}/progress`, { agent, body: {} });
    const next = await createTask({ scope });
    const cancelled = await api('PATCH', `/api/v1/tasks/${id}`, { body: { status: 'cancelled' } });
    expect(cancelled.body.status).toBe('cancelled');
    await untilTask(next, (t) => t.status === 'assigned' && t.assignee === agent, 'freed slot used');
    const late = await api('POST', `/api/v1/tasks/${id}/complete`, { agent, body: { result: {} } });
    expect(late.status).toBe(409);
    expect((await getTask(id)).status).toBe('cancelled');
  });
});

describe('agents that stop', () => {
  it('returns a stopped agent\'s tasks without spending a retry and places them again at once', async () => {
    const scope = freshScope();
    await register(`${scope}-a`, scope);
    const id = await createTask({ scope, max_retries: 0 });
    const first = await untilTask(id, (t) => t.status === 'assigned', 'assignment');
    await api('POST', `/api/v1/tasks/${id}/progress`, { agent: first.assignee, body: {} });
    await register(`${scope}-b`, scope);
    await register(first.assignee, scope, { status: 'stopped' });
    const moved = await untilTask(id, (t) => t.status === 'assigned' && t.assignee !== first.assignee, 'reassignment');
    expect(moved).toMatchObject({ retry_count: 0, reassign_count: 1, attempt: 2 });
    expect((await eventsOf(id)).map((e) => e.event)).toContain('reassigned');
    const agents = (await api('GET', '/api/v1/agents', { admin: true })).body.agents as { name: string; active_tasks: number }[];
    expect(agents.find((a) => a.name === first.assignee)?.active_tasks).toBe(0);
  });

  it('fails a task once agents holding it have died as often as the reassignment budget allows', async () => {
    const scope = freshScope();
    const id = await createTask({ scope });
    for (let i = 1; i <= 2; i += 1) {
      const agent = `${scope}-doomed-${i}`;
      await register(agent, scope);
      await untilTask(id, (t) => t.assignee === agent && t.status === 'assigned', `assignment ${i}`);
      await register(agent, scope, { status: 'stopped' });
    }
    const failed = await untilTask(id, (t) => t.status === 'failed', 'budget exhausted');
    expect(failed.error).toMatch(/reassignment budget exhausted: 2 agents/);
  });

  it('treats a standalone agent whose heartbeat stopped as stopped', async () => {
    const scope = freshScope();
    const agent = `${scope}-silent`;
    await register(agent, scope);
    const id = await createTask({ scope });
    await untilTask(id, (t) => t.status === 'assigned', 'assignment');
    await sql`UPDATE dispatch_agents SET last_seen_at = now() - interval '2 minutes' WHERE name = ${agent}`.execute(database.handle.db);
    await untilTask(id, (t) => t.status === 'pending' && t.reassign_count === 1, 'return after heartbeat expiry');
  });
});

describe('waking sleeping agents', () => {
  it('reserves the task for a sleeping winner, which keeps it when it comes up in time', async () => {
    const scope = freshScope();
    const agent = `${scope}-sleepy`;
    await register(agent, scope, { status: 'sleeping' });
    const id = await createTask({ scope });
    await untilTask(id, (t) => t.status === 'assigned' && t.assignee === agent, 'reservation');
    await waitFor(async () => {
      const row = await database.handle.db.selectFrom('dispatch_agents').select(['status', 'wake_requested_at']).where('name', '=', agent).executeTakeFirst();
      return row?.status === 'starting' && row.wake_requested_at !== null;
    }, { what: 'wake requested' });
    await waitFor(() => jobQueued(database.handle.db, `wake-check:${agent}`), { what: 'wake check scheduled' });
    await register(agent, scope, { status: 'ready' });
    // The wake check (due wake_timeout_ms after the wake) is what would take the task back.
    await waitForJobRun(database.handle.db, `wake-check:${agent}`);
    expect(await getTask(id)).toMatchObject({ status: 'assigned', assignee: agent, attempt: 1 });
  });

  it('returns the task without spending a retry when the agent does not wake in time, and cools the agent down', async () => {
    const scope = freshScope();
    const agent = `${scope}-comatose`;
    await register(agent, scope, { status: 'sleeping' });
    const id = await createTask({ scope, max_retries: 0 });
    await untilTask(id, (t) => t.status === 'assigned', 'reservation');
    const back = await untilTask(id, (t) => t.status === 'pending', 'wake timeout');
    expect(back.retry_count).toBe(0);
    expect((await eventsOf(id)).map((e) => e.event)).toContain('wake_timeout');
    const row = await database.handle.db.selectFrom('dispatch_agents').select(['avoid_until']).where('name', '=', agent).executeTakeFirstOrThrow();
    expect(row.avoid_until!.getTime()).toBeGreaterThan(Date.now());
    // A task placed after it shows an assignment pass has run since: the cooling agent got nothing.
    const markerScope = freshScope();
    await register(`${markerScope}-a`, markerScope);
    const marker = await createTask({ scope: markerScope });
    await untilTask(marker, (t) => t.status === 'assigned', 'a later assignment pass');
    expect((await getTask(id)).status).toBe('pending');
  });
});

describe('deadlines live in the database', () => {
  it('announces an attempt\'s deadline to the due timer when it is sooner than the timer\'s longest wait, and only then', async () => {
    const listener = new pg.Client({ connectionString: database.url });
    await listener.connect();
    try {
      const heard: number[] = [];
      listener.on('notification', (n) => heard.push(Number(n.payload)));
      await listener.query(`LISTEN ${NOTIFY_CHANNEL.due}`);
      const scope = freshScope();
      await register(`${scope}-a`, scope, { max_concurrent: 5 });
      const distant = await createTask({ scope, timeout_ms: 600_000 });
      await untilTask(distant, (t) => t.status === 'assigned', 'the distant deadline assigned');
      const soon = await createTask({ scope, timeout_ms: DEADLINE_NOTICE_WITHIN_MS / 2 });
      await untilTask(soon, (t) => t.status === 'assigned', 'the soon deadline assigned');
      // Notifications arrive in commit order: once this delayed task's arrives, any of the assignments' would have.
      const marker = await createTask({ scope: freshScope(), delay_ms: 3_600_000 });
      const markerDue = (await database.handle.db.selectFrom('dispatch_tasks').select('not_before').where('id', '=', marker).executeTakeFirstOrThrow()).not_before!;
      await waitFor(() => heard.includes(markerDue.getTime()), { what: 'the delayed task announced' });
      expect(heard).toContain((await deadlineOf(soon)).getTime());
      expect(heard).not.toContain((await deadlineOf(distant)).getTime());
    } finally {
      await listener.end();
    }
  });

  it('loses no deadline and fires none twice when every replica restarts', async () => {
    const db2 = await createTestDatabase();
    const config = { worker: { poll_interval_ms: 50 }, lifecycle: { sweep_interval_ms: 200 } };
    let first: TestDispatch | undefined = await startTestDispatch(db2.url, config);
    let second: TestDispatch | undefined;
    try {
      const client = apiClient(first.baseUrl);
      await client('PUT', '/api/v1/agents/holder', { agent: 'holder', body: { capabilities: ['restart'], max_concurrent: 10 } });
      const ids: string[] = [];
      for (let i = 0; i < 5; i += 1) {
        ids.push((await client('POST', '/api/v1/tasks', { body: { title: `t${i}`, scope: 'restart', timeout_ms: 1_200, max_retries: 0 } })).body.id);
      }
      await waitFor(async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status = 'assigned'`.execute(db2.handle.db);
        return rows[0]!.n === 5;
      }, { what: 'all assigned' });
      await first.stop();
      first = undefined;
      // Every deadline passes while no replica runs.
      await waitFor(async () => {
        const { rows } = await sql<{ due: boolean }>`
          SELECT bool_and(deadline_at < now()) AS due FROM dispatch_tasks WHERE status = 'assigned'`.execute(db2.handle.db);
        return rows[0]!.due;
      }, { what: 'every deadline past' });
      second = await startTestDispatch(db2.url, config);
      await waitFor(async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE status = 'timeout'`.execute(db2.handle.db);
        return rows[0]!.n === 5;
      }, { what: 'all timed out after restart' });
      // The due timer, which times attempts out, has made a pass since: a later expiry.
      const { body: marker } = await apiClient(second.baseUrl)('POST', '/api/v1/tasks', { body: { title: 'marker', scope: 'nobody', schedule_to_start_timeout_ms: 50 } });
      await waitFor(async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_task_events WHERE task_id = ${marker.id} AND event = 'expired'`.execute(db2.handle.db);
        return rows[0]!.n === 1;
      }, { what: 'a later due timer pass' });
      const { rows } = await sql<{ task_id: string; n: number }>`
        SELECT task_id, count(*)::int AS n FROM dispatch_task_events WHERE event LIKE 'timeout%' GROUP BY task_id`.execute(db2.handle.db);
      expect(rows.map((r) => r.n)).toEqual([1, 1, 1, 1, 1]);
      expect(rows.map((r) => r.task_id).sort()).toEqual([...ids].sort());
    } finally {
      await first?.stop();
      await second?.stop();
      await db2.drop();
    }
  });
});
