import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { assignDirectly, createTask } from '../helpers/tasks.js';
import { useTaskApi } from '../helpers/task-api.js';

/**
 * Queue statistics for admins, and the ops port: /health, /ready and /metrics. Through real HTTP
 * on a real PostgreSQL.
 */
const { dispatch, api } = await useTaskApi();

describe('GET /api/v1/stats', () => {
  let statsDatabase: TestDatabase;
  let statsDispatch: TestDispatch;
  let statsApi: ApiClient;
  beforeAll(async () => {
    statsDatabase = await createTestDatabase();
    statsDispatch = await startTestDispatch(statsDatabase.url);
    statsApi = apiClient(statsDispatch.baseUrl, 'requester-s');
  });
  afterAll(async () => {
    await statsDispatch?.stop();
    await statsDatabase?.drop();
  });

  it('counts the queue by status and averages completion time', async () => {
    const sdb = statsDatabase.handle.db;
    const empty = await statsApi('GET', '/api/v1/stats', { admin: true });
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({ pending: 0, assigned: 0, running: 0, completed: 0, failed: 0, avg_completion_ms: null });

    await createTask(statsApi);
    await createTask(statsApi);
    await assignDirectly(sdb, (await createTask(statsApi)).id, 'w1');
    const running = await assignDirectly(sdb, (await createTask(statsApi)).id, 'w1');
    await statsApi('POST', `/api/v1/tasks/${running.id}/progress`, { agent: 'w1', body: {} });
    const completed: string[] = [];
    for (let i = 0; i < 2; i++) {
      const task = await assignDirectly(sdb, (await createTask(statsApi)).id, 'w2');
      expect((await statsApi('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'w2', body: {} })).status).toBe(200);
      completed.push(task.id);
    }
    const failed = await assignDirectly(sdb, (await createTask(statsApi, { max_retries: 0 })).id, 'w2');
    await statsApi('POST', `/api/v1/tasks/${failed.id}/fail`, { agent: 'w2', body: { error: 'x' } });
    await statsApi('PATCH', `/api/v1/tasks/${(await createTask(statsApi)).id}`, { body: { status: 'cancelled' } });
    // Completion times of exactly 2 s and 4 s.
    await sql`UPDATE dispatch_tasks SET created_at = completed_at - interval '2 seconds' WHERE id = ${completed[0]}`.execute(sdb);
    await sql`UPDATE dispatch_tasks SET created_at = completed_at - interval '4 seconds' WHERE id = ${completed[1]}`.execute(sdb);

    const stats = await statsApi('GET', '/api/v1/stats', { admin: true });
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({
      pending: 2,
      assigned: 1,
      running: 1,
      completed: 2,
      failed: 1,
      cancelled: 1,
      timeout: 0,
      avg_completion_ms: 3000,
      window_seconds: 900,
    });
    expect(Date.parse(stats.body.timestamp)).not.toBeNaN();
  });

  it('reports /ready as 503 when the schema is not fully migrated', async () => {
    expect((await fetch(`${statsDispatch.opsUrl}/ready`)).status).toBe(200);
    await sql`DELETE FROM kysely_migration`.execute(statsDatabase.handle.db);
    const response = await fetch(`${statsDispatch.opsUrl}/ready`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'not ready' });
  });
});

describe('ops port', () => {
  it('/health answers while the process is alive', async () => {
    const response = await fetch(`${dispatch.opsUrl}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('/ready answers 200 when the database is reachable and migrated', async () => {
    const response = await fetch(`${dispatch.opsUrl}/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('/metrics serves Prometheus text with requests by route and status, and task transitions', async () => {
    await createTask(api);
    await api('GET', `/api/v1/tasks/${randomUUID()}`);
    const response = await fetch(`${dispatch.opsUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toContain('# TYPE dispatch_http_requests_total counter');
    expect(text).toMatch(/dispatch_http_requests_total\{method="POST",route="\/api\/v1\/tasks",status="201"\} [1-9]\d*/);
    expect(text).toMatch(/dispatch_http_requests_total\{method="GET",route="\/api\/v1\/tasks\/:id",status="404"\} [1-9]\d*/);
    expect(text).toMatch(/dispatch_http_request_duration_seconds_bucket\{le="\+Inf",method="POST",route="\/api\/v1\/tasks"\} [1-9]\d*/);
    expect(text).toMatch(/dispatch_task_transitions_total\{event="created"\} [1-9]\d*/);
    expect(text).toContain('dispatch_process_');
  });

  it('does not serve the API on the ops port, nor the ops routes on the API port', async () => {
    expect((await fetch(`${dispatch.opsUrl}/api/v1/tasks`, { headers: { 'x-agent-id': 'a' } })).status).toBe(404);
    expect((await fetch(`${dispatch.baseUrl}/metrics`)).status).toBe(404);
  });
});
