import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { issueTokens } from '../helpers/credentials.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { expectError } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * /api/v1/schedules in token mode: who may create, see, change and delete a schedule; bad input
 * named; the tasks it creates belong to its owner; and catch_up after downtime (skip vs one).
 */
let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;
let tokens: Record<string, string> = {};
const LATE_AFTER_MS = 2_000;

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' }, schedules: { poll_interval_ms: 100, late_after_ms: LATE_AFTER_MS } });
  api = apiClient(dispatch.baseUrl, 'nobody');
  tokens = await issueTokens(api, [
    ['planner-1', 'requester', []],
    ['planner-2', 'requester', ['mail']],
    ['watcher', 'observer', []],
    ['coder', 'worker', []],
  ]);
});
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

const as = (agent: string) => ({ agent: null, token: tokens[agent]! });
const template = { title: 'summarise the inbox', scope: 'mail', priority: 2 };
const db = () => database.handle.db;

async function create(agent: string, body: Record<string, unknown>) {
  return await api('POST', '/api/v1/schedules', { ...as(agent), body: { cron: '0 * * * *', template, ...body } });
}

describe('the schedules API', () => {
  it('creates, reads, pauses, resumes, changes and deletes, for the owner only', async () => {
    const created = await create('planner-1', { cron: '30 6 * * *', time_zone: 'Europe/Paris' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const s = created.body;
    expect(s).toMatchObject({ owner: 'planner-1', cron: '30 6 * * *', time_zone: 'Europe/Paris', catch_up: 'skip', paused: false, template: { ...template, max_retries: 1 } });
    // 06:30 in Paris is 05:30 or 04:30 UTC depending on the season.
    expect(new Date(s.next_run_at).getUTCMinutes()).toBe(30);
    expect([4, 5]).toContain(new Date(s.next_run_at).getUTCHours());

    expect((await api('GET', `/api/v1/schedules/${s.id}`, as('planner-1'))).body.id).toBe(s.id);
    expect((await api('GET', `/api/v1/schedules/${s.id}`, as('watcher'))).status).toBe(200);
    expectError(await api('GET', `/api/v1/schedules/${s.id}`, as('planner-2')), 404, 'not_found');
    expect((await api('GET', '/api/v1/schedules', as('planner-2'))).body.schedules.map((x: { id: string }) => x.id)).not.toContain(s.id);
    expect((await api('GET', '/api/v1/schedules', as('planner-1'))).body.schedules.map((x: { id: string }) => x.id)).toContain(s.id);

    expectError(await api('PATCH', `/api/v1/schedules/${s.id}`, { ...as('planner-2'), body: { paused: true } }), 404, 'not_found');
    expectError(await api('PATCH', `/api/v1/schedules/${s.id}`, { ...as('watcher'), body: { paused: true } }), 403, 'forbidden');
    const paused = await api('PATCH', `/api/v1/schedules/${s.id}`, { ...as('planner-1'), body: { paused: true } });
    expect(paused.body).toMatchObject({ paused: true, next_run_at: null });
    const resumed = await api('PATCH', `/api/v1/schedules/${s.id}`, { ...as('planner-1'), body: { paused: false, cron: '0 12 * * 1', time_zone: 'UTC' } });
    expect(resumed.body).toMatchObject({ paused: false, cron: '0 12 * * 1' });
    expect(new Date(resumed.body.next_run_at).getUTCDay()).toBe(1);

    expectError(await api('DELETE', `/api/v1/schedules/${s.id}`, as('planner-2')), 404, 'not_found');
    expect((await api('DELETE', `/api/v1/schedules/${s.id}`, as('planner-1'))).status).toBe(204);
    expectError(await api('GET', `/api/v1/schedules/${s.id}`, as('planner-1')), 404, 'not_found');
  });

  it('is refused to workers and outside a credential scopes', async () => {
    expectError(await create('coder', {}), 403, 'forbidden');
    expectError(await create('planner-2', { template: { title: 't', scope: 'code' } }), 403, 'forbidden', 'template.scope');
    expect((await create('planner-2', {})).status).toBe(201);
  });

  it('answers 400 naming the field', async () => {
    expectError(await create('planner-1', { cron: 'every day' }), 400, 'validation_failed', 'cron');
    expectError(await create('planner-1', { cron: '61 * * * *' }), 400, 'validation_failed', 'cron');
    expectError(await create('planner-1', { time_zone: 'Mars/Olympus' }), 400, 'validation_failed', 'time_zone');
    expectError(await create('planner-1', { catch_up: 'all' }), 400, 'validation_failed', 'catch_up');
    expectError(await create('planner-1', { template: { scope: 'mail' } }), 400, 'validation_failed', 'template.title');
    expectError(await create('planner-1', { template: { ...template, depends_on: [] } }), 400, 'validation_failed');
    expectError(await api('PATCH', '/api/v1/schedules/not-a-uuid', { ...as('planner-1'), body: { paused: true } }), 400, 'validation_failed', 'id');
    expectError(await api('POST', '/api/v1/schedules', { ...as('planner-1'), body: { template } }), 400, 'validation_failed', 'cron');
  });
});

describe('firing', () => {
  /** The occurrences the schedule's tasks were created for, from their Idempotency-Keys. */
  async function occurrences(scheduleId: string) {
    const { rows } = await sql<{ key: string; requester: string }>`
      SELECT idempotency_key AS key, requester FROM dispatch_tasks WHERE idempotency_key LIKE ${`schedule:${scheduleId}@%`} ORDER BY idempotency_key`.execute(db());
    return rows;
  }

  it('creates one task per occurrence, requested by the owner', async () => {
    const s = (await create('planner-1', { cron: '* * * * * *' })).body;
    await waitFor(async () => (await occurrences(s.id)).length >= 3, { what: 'three occurrences', timeoutMs: 20_000 });
    await api('PATCH', `/api/v1/schedules/${s.id}`, { ...as('planner-1'), body: { paused: true } });
    const made = await occurrences(s.id);
    expect(new Set(made.map((m) => m.requester))).toEqual(new Set(['planner-1']));
    const seconds = made.map((m) => Date.parse(m.key.split('@')[1]!) / 1000);
    // Consecutive seconds: none skipped, none twice.
    expect(seconds).toEqual(seconds.map((_, i) => seconds[0]! + i));
    const read = await api('GET', `/api/v1/schedules/${s.id}`, as('planner-1'));
    expect(read.body.last_task_id).not.toBeNull();
  });

  it.each([
    ['skip', 0],
    ['one', 1],
  ] as const)('after downtime, catch_up %s creates %i task(s) for the missed occurrences', async (catchUp, missedTasks) => {
    // Created paused, then due 30 s ago as if every replica had been down since.
    const s = (await create('planner-1', { cron: '* * * * * *', catch_up: catchUp, paused: true })).body;
    await sql`UPDATE dispatch_schedules SET paused = false, next_run_at = date_trunc('second', now()) - interval '30 seconds' WHERE id = ${s.id}`.execute(db());
    await waitFor(async () => (await occurrences(s.id)).length >= 3 + missedTasks, { what: 'tasks after downtime', timeoutMs: 20_000 });
    await api('PATCH', `/api/v1/schedules/${s.id}`, { ...as('planner-1'), body: { paused: true } });
    const started = Date.now();
    const made = (await occurrences(s.id)).map((m) => Date.parse(m.key.split('@')[1]!));
    const missed = made.filter((at) => at < started - 20_000);
    expect(missed).toHaveLength(missedTasks);
    // Nothing for the other 29 missed seconds.
    expect(made.filter((at) => at < started - LATE_AFTER_MS - 5_000)).toHaveLength(missedTasks);
  });
});
