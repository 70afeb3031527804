import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';

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

describe('task round trip', () => {
  it('creates a task and reads it back', async () => {
    const created = await api('POST', '/api/v1/tasks', { body: { title: 'Review PR', scope: 'Code-Review' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ title: 'Review PR', scope: 'code-review', status: 'pending', priority: 3, requester: 'agent-test' });
    const read = await api('GET', `/api/v1/tasks/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(created.body.id);
  });
});
