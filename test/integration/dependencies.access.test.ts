import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { issueTokens } from '../helpers/credentials.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { assignDirectly, expectError } from '../helpers/tasks.js';

/**
 * Token mode: a requester may depend only on tasks it may read, and the agent working on a
 * dependent may read the tasks it depends on (their results are its input); nobody else may.
 */
let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;
let tokens: Record<string, string> = {};

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' } });
  api = apiClient(dispatch.baseUrl, 'nobody');
  tokens = await issueTokens(api, [
    ['planner-1', 'requester'],
    ['planner-2', 'requester'],
    ['coder-1', 'worker'],
    ['coder-2', 'worker'],
  ]);
});
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

const as = (agent: string) => ({ agent: null, token: tokens[agent]! });
async function create(agent: string, body: Record<string, unknown>) {
  return await api('POST', '/api/v1/tasks', { ...as(agent), body: { title: 't', scope: 'code', ...body } });
}

describe('dependencies in token mode', () => {
  it("refuses another requester's task as a dependency, as if it did not exist", async () => {
    const mine = (await create('planner-1', {})).body;
    const refused = await create('planner-2', { depends_on: [mine.id] });
    expectError(refused, 400, 'validation_failed', 'depends_on.0');
    expect(refused.body.error.details[0].message).toBe('no task with this id');
    expect((await create('planner-1', { depends_on: [mine.id] })).status).toBe(201);
    expect((await create('planner-2', { depends_on: [mine.id] })).status).toBe(400);
  });

  it("lets the dependent's assignee read its dependencies' results, and no other worker", async () => {
    const input = (await create('planner-1', { title: 'input' })).body;
    const dependent = (await create('planner-1', { depends_on: [input.id] })).body;
    await assignDirectly(database.handle.db, input.id, 'coder-2');
    const done = await api('POST', `/api/v1/tasks/${input.id}/complete`, { ...as('coder-2'), body: { result: { answer: 42 } } });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    // Before coder-1 holds the dependent, the input is none of its business.
    expect((await api('GET', `/api/v1/tasks/${input.id}`, as('coder-1'))).status).toBe(404);

    await assignDirectly(database.handle.db, dependent.id, 'coder-1');
    const seen = await api('GET', `/api/v1/tasks/${dependent.id}`, as('coder-1'));
    expect(seen.body).toMatchObject({ status: 'assigned', depends_on: [input.id], waiting_for: [] });
    const read = await api('GET', `/api/v1/tasks/${input.id}`, as('coder-1'));
    expect(read.status).toBe(200);
    expect(read.body.result).toEqual({ answer: 42 });
    expect((await api('GET', `/api/v1/tasks/${input.id}`, as('planner-2'))).status).toBe(404);
  });
});
