import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url);
  api = apiClient(dispatch.baseUrl);
});
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

const taskStatus = async (id: string) => (await api('GET', `/api/v1/tasks/${id}`)).body;

describe('standalone assignment end to end', () => {
  it('registers an agent, assigns a new task to it within moments, and completes it', async () => {
    const reg = await api('PUT', '/api/v1/agents/worker-1', { agent: 'worker-1', body: { capabilities: ['code', 'Review'] } });
    expect(reg.status).toBe(200);
    expect(reg.body).toMatchObject({ name: 'worker-1', status: 'ready', capabilities: ['code', 'review'], drained: false });
    const created = await api('POST', '/api/v1/tasks', { body: { title: 'review it', scope: 'review' } });
    const assigned = await waitFor(async () => {
      const t = await taskStatus(created.body.id);
      return t.status === 'assigned' ? t : undefined;
    }, { what: 'assignment' });
    expect(assigned.assignee).toBe('worker-1');
    expect(assigned.attempt).toBe(1);
    const placement = await api('GET', `/api/v1/tasks/${created.body.id}/placement`);
    expect(placement.body.decision.winner).toBe('worker-1');
    const done = await api('POST', `/api/v1/tasks/${created.body.id}/complete`, { agent: 'worker-1', body: { result: { ok: true } } });
    expect(done.status).toBe(200);
    expect(done.body.status).toBe('completed');
  });

  it('records unmatched once and assigns as soon as a capable agent registers', async () => {
    const created = await api('POST', '/api/v1/tasks', { body: { title: 'translate', scope: 'translate' } });
    await waitFor(async () => {
      const events = (await api('GET', `/api/v1/tasks/${created.body.id}/events`)).body.events as { event: string }[];
      return events.some((e) => e.event === 'unmatched');
    }, { what: 'unmatched event' });
    const pending = await api('GET', `/api/v1/tasks/${created.body.id}/placement`);
    expect(pending.body.waiting_because.join(' ')).toContain('no agent has the capability');
    await api('PUT', '/api/v1/agents/linguist', { agent: 'linguist', body: { capabilities: 'translate' } });
    const assigned = await waitFor(async () => {
      const t = await taskStatus(created.body.id);
      return t.status === 'assigned' ? t : undefined;
    }, { what: 'assignment after registration', timeoutMs: 3_000 });
    expect(assigned.assignee).toBe('linguist');
    const events = (await api('GET', `/api/v1/tasks/${created.body.id}/events`)).body.events as { event: string }[];
    expect(events.filter((e) => e.event === 'unmatched')).toHaveLength(1);
  });
});
