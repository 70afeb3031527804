import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPlanCapture } from '../../bench/lib/query-plans.js';
import { readAgentLoad, readObservations, readOldestPending, readScopeCounts } from '../../src/tasks/queue-metrics.queries.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { parseExposition, type Sample } from '../helpers/metrics-text.js';
import { insertTasks } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;

const MAX_SCOPES = 4;

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, {
    worker: { poll_interval_ms: 50 },
    lifecycle: { retry_backoff_base_ms: 10, retry_backoff_max_ms: 20, sweep_interval_ms: 200 },
    metrics: { max_scopes: MAX_SCOPES },
  });
  api = apiClient(dispatch.baseUrl);
});
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

async function scrape(): Promise<Sample[]> {
  const response = await fetch(`${dispatch.opsUrl}/metrics`);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function register(name: string, scopes: string[], extra: Record<string, unknown> = {}) {
  const response = await api('PUT', `/api/v1/agents/${name}`, { agent: name, body: { capabilities: scopes, ...extra } });
  expect(response.status).toBe(200);
}

async function create(scope: string, extra: Record<string, unknown> = {}): Promise<string> {
  const response = await api('POST', '/api/v1/tasks', { body: { title: 'work', scope, ...extra } });
  expect(response.status).toBe(201);
  return response.body.id as string;
}

async function statusOf(id: string): Promise<{ status: string; assignee: string; attempt: number }> {
  return (await api('GET', `/api/v1/tasks/${id}`)).body;
}

const untilStatus = (id: string, statuses: string[], attempt = 0) =>
  waitFor(async () => {
    const task = await statusOf(id);
    return statuses.includes(task.status) && task.attempt >= attempt ? task : undefined;
  }, { what: `task ${id} ${statuses.join('/')}` });

/** What counting the tasks gives, per scope: open tasks by status, finished tasks by outcome. */
async function countRows(scopes: string[]) {
  const { rows } = await sql<{ scope: string; status: string; n: number }>`
    SELECT scope, status, count(*)::int AS n FROM dispatch_tasks WHERE scope = ANY(${scopes}) GROUP BY scope, status`.execute(dispatch.dispatch.database.db);
  return rows;
}

/** Differences between the scrape and count(*), per scope and status, open and finished. */
async function scrapeVersusCounts(scopes: string[]) {
  const rows = await countRows(scopes);
  const samples = await scrape();
  const differences: string[] = [];
  for (const scope of scopes) {
    for (const status of ['pending', 'assigned', 'running']) {
      const counted = rows.find((r) => r.scope === scope && r.status === status)?.n ?? 0;
      const scraped = value(samples, 'dispatch_queue_depth', { scope, status });
      if (scraped !== counted) differences.push(`${scope} ${status}: scraped ${scraped}, counted ${counted}`);
    }
    for (const outcome of ['completed', 'failed', 'cancelled', 'timeout']) {
      const counted = rows.find((r) => r.scope === scope && r.status === outcome)?.n ?? 0;
      const scraped = value(samples, 'dispatch_tasks_finished_total', { scope, outcome }) ?? 0;
      if (scraped !== counted) differences.push(`${scope} ${outcome}: scraped ${scraped}, counted ${counted}`);
    }
  }
  return { samples, differences };
}

/**
 * The scrape agrees with count(*). Work may still be moving (a retry's backoff, a timeout),
 * so the two reads may see different moments: wait until they agree; a counter that drifted never
 * would. The counter table is also compared with count(*) in one statement, one snapshot.
 */
async function expectScrapeMatchesCounts(scopes: string[]) {
  const { rows } = await sql<{ scope: string; status: string; kept: number; counted: number }>`
    SELECT scope, status, coalesce(c.tasks, 0)::int AS kept, coalesce(t.n, 0)::int AS counted
      FROM (SELECT scope, status, sum(tasks) AS tasks FROM dispatch_scope_counts WHERE scope = ANY(${scopes}) GROUP BY 1, 2) c
      FULL JOIN (SELECT scope, status, count(*) AS n FROM dispatch_tasks
                  WHERE scope = ANY(${scopes}) AND status IN ('pending', 'assigned', 'running')
                  GROUP BY scope, status) t USING (scope, status)`.execute(dispatch.dispatch.database.db);
  expect(rows.filter((r) => r.kept !== r.counted)).toEqual([]);
  let last: string[] = [];
  return await waitFor(async () => {
    const { samples, differences } = await scrapeVersusCounts(scopes);
    last = differences;
    return differences.length === 0 ? samples : undefined;
  }, { what: 'the scrape to agree with count(*)', timeoutMs: 5_000 }).catch((error: unknown) => {
    throw new Error(`${String(error)}: ${last.join('; ')}`);
  });
}

describe('queue metrics', () => {
  it('stay exact across create, assign, progress, complete, fail, retry, cancel, timeout and an agent stopping', async () => {
    const scope = 'metrics-flow';
    const waiting = 'metrics-waiting';
    await register('metrics-a', [scope], { max_concurrent: 20 });

    const completed = await create(scope);
    const failed = await create(scope, { max_retries: 0 });
    const retried = await create(scope, { max_retries: 1 });
    const cancelledRunning = await create(scope);
    const timedOut = await create(scope, { timeout_ms: 300, max_retries: 1 });
    const returned = await create(scope);
    const cancelledPending = await create(waiting);
    await create(waiting);
    await expectScrapeMatchesCounts([scope, waiting]);

    for (const id of [completed, failed, retried, cancelledRunning, returned]) await untilStatus(id, ['assigned']);
    await api('POST', `/api/v1/tasks/${completed}/progress`, { agent: 'metrics-a', body: {} });
    await api('POST', `/api/v1/tasks/${cancelledRunning}/progress`, { agent: 'metrics-a', body: {} });
    await expectScrapeMatchesCounts([scope, waiting]);

    expect((await api('POST', `/api/v1/tasks/${completed}/complete`, { agent: 'metrics-a', body: { result: 1 } })).status).toBe(200);
    expect((await api('POST', `/api/v1/tasks/${failed}/fail`, { agent: 'metrics-a', body: { error: 'no', retryable: false } })).status).toBe(200);
    expect((await api('POST', `/api/v1/tasks/${retried}/fail`, { agent: 'metrics-a', body: { error: 'flaky' } })).status).toBe(200);
    expect((await api('PATCH', `/api/v1/tasks/${cancelledRunning}`, { body: { status: 'cancelled' } })).status).toBe(200);
    expect((await api('PATCH', `/api/v1/tasks/${cancelledPending}`, { body: { status: 'cancelled' } })).status).toBe(200);
    // The retry comes back after its backoff and is assigned again; the short timeout runs out twice.
    await untilStatus(retried, ['assigned'], 2);
    await untilStatus(timedOut, ['timeout']);
    await expectScrapeMatchesCounts([scope, waiting]);

    // An agent stopping hands its tasks back in SQL (no replica code runs): still exact.
    await register('metrics-a', [scope], { status: 'stopped' });
    await untilStatus(returned, ['pending']);
    const samples = await expectScrapeMatchesCounts([scope, waiting]);

    // Assignments: one for each task that reached the agent, a second for `retried` and `timedOut`.
    // Attempts back to pending: the retryable failure, the first timeout, the two the stop returned.
    expect(value(samples, 'dispatch_schedule_to_start_seconds_count', { scope })).toBe(8);
    expect(value(samples, 'dispatch_schedule_to_start_seconds_bucket', { scope, le: '+Inf' })).toBe(8);
    expect(value(samples, 'dispatch_task_run_seconds_count', { scope, outcome: 'completed' })).toBe(1);
    expect(value(samples, 'dispatch_task_run_seconds_count', { scope, outcome: 'retried' })).toBe(4);
    expect(value(samples, 'dispatch_task_run_seconds_count', { scope, outcome: 'timeout' })).toBe(1);
    expect(value(samples, 'dispatch_oldest_pending_seconds', { scope: waiting })).toBeGreaterThan(0);
    expect(value(samples, 'dispatch_agent_load', { agent: 'metrics-a' })).toBeUndefined();
  });

  it('reports agent load against limit', async () => {
    await register('metrics-b', ['metrics-load'], { max_concurrent: 7 });
    await create('metrics-load');
    const samples = await waitFor(async () => {
      const s = await scrape();
      return value(s, 'dispatch_agent_load', { agent: 'metrics-b' }) === 1 ? s : undefined;
    }, { what: 'metrics-b to hold its task' });
    expect(value(samples, 'dispatch_agent_limit', { agent: 'metrics-b' })).toBe(7);
  });

  it(`folds scopes past metrics.max_scopes (${MAX_SCOPES}) into "other"`, async () => {
    // Deeper than anything the other tests left, so these keep their labels.
    const deep = ['fold-a', 'fold-b', 'fold-c', 'fold-d'];
    for (const [i, scope] of deep.entries()) await insertTasks(dispatch.dispatch.database.db, 50 + i, { scope });
    const samples = await scrape();
    const scopes = new Set(samples.filter((s) => s.name === 'dispatch_queue_depth').map((s) => s.labels.scope));
    expect([...scopes].sort()).toEqual([...deep, 'other'].sort());
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM dispatch_tasks WHERE status = 'pending' AND scope <> ALL(${deep})`.execute(dispatch.dispatch.database.db);
    expect(value(samples, 'dispatch_queue_depth', { scope: 'other', status: 'pending' })).toBe(rows[0]!.n);
    const finishedScopes = new Set(samples.filter((s) => s.name === 'dispatch_tasks_finished_total').map((s) => s.labels.scope));
    expect([...finishedScopes]).toEqual(['other']);
  });

  it('reads no task table sequentially: counters, and one index probe per scope', async () => {
    // Enough finished history that a scan would be the planner's worst choice, as in production.
    await insertTasks(dispatch.dispatch.database.db, 20_000, { scope: 'history', status: 'completed' });
    await sql`ANALYZE dispatch_tasks`.execute(dispatch.dispatch.database.db);
    const capture = openPlanCapture(database.url, ['dispatch_tasks', 'dispatch_task_events']);
    try {
      const { db } = capture.handle;
      const plans = await capture.plansOf(() =>
        Promise.all([readScopeCounts(db), readOldestPending(db), readObservations(db), readAgentLoad(db, 3)]),
      );
      expect(plans.length).toBe(1);
      // The only read of a task table is the index probe (a sort of the few counter keys aside).
      const taskAccess = plans[0]!.access.filter((step) => !step.startsWith('Sort of'));
      expect(taskAccess).toEqual([expect.stringMatching(/^Index (Only )?Scan using dispatch_tasks_pending_by_scope_idx$/)]);
      expect(plans.some((p) => p.seqScan)).toBe(false);
    } finally {
      await capture.handle.close();
    }
  });
});
