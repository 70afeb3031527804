import { describe, expect, it } from 'vitest';
import { responseProblem } from '../helpers/openapi-contract.js';

/** The check every test client runs on every answer: it must catch what drifts from openapi.json. */
const task = {
  id: '0190d6a4-5c3e-7b2a-9f10-3a4b5c6d7e8f',
  requester: 'requester-1',
  title: 't',
  description: null,
  scope: 'code',
  priority: 3,
  status: 'pending',
  assignee: null,
  result: null,
  error: null,
  context: null,
  timeout_ms: 1000,
  max_retries: 1,
  retry_count: 0,
  parent_id: null,
  created_at: '2026-01-01T00:00:00.000Z',
  assigned_at: null,
  started_at: null,
  completed_at: null,
  attempt: 0,
  heartbeat_timeout_ms: null,
  start_timeout_ms: null,
  reassign_count: 0,
  not_before: null,
  deadline_at: null,
  updated_at: '2026-01-01T00:00:00.000Z',
  traceparent: null,
  waiting_on: 0,
  on_dependency_failure: 'cancel',
  run_at: null,
  start_by: null,
  timeout_reason: null,
  // GET one answers with the task's dependencies.
  depends_on: [],
  waiting_for: [],
};
const json = 'application/json';
const getTask = { method: 'GET', url: `/api/v1/tasks/${task.id}`, contentType: json };

describe('responseProblem', () => {
  it('accepts an answer as documented', () => {
    expect(responseProblem({ ...getTask, status: 200, body: task })).toBeUndefined();
    const notFound = { error: { code: 'not_found', message: 'task not found', details: [] } };
    expect(responseProblem({ ...getTask, status: 404, body: notFound })).toBeUndefined();
    expect(responseProblem({ method: 'GET', url: 'http://127.0.0.1:1/api/v1/nothing', status: 404, contentType: json, body: notFound })).toBeUndefined();
  });

  it('refuses a field the document does not have, and one missing', () => {
    expect(responseProblem({ ...getTask, status: 200, body: { ...task, secret: 1 } })).toMatch(/additional properties/);
    const { title: _title, ...untitled } = task;
    expect(responseProblem({ ...getTask, status: 200, body: untitled })).toMatch(/must have required property 'title'/);
    expect(responseProblem({ ...getTask, status: 200, body: { ...task, status: 'lost' } })).toMatch(/status/);
    expect(responseProblem({ ...getTask, status: 200, body: { ...task, created_at: 'yesterday' } })).toMatch(/created_at/);
  });

  it('refuses an undocumented status, and an error code that does not belong to its status', () => {
    expect(responseProblem({ ...getTask, status: 418, body: null })).toMatch(/status 418 is not documented .*getTask/);
    expect(responseProblem({ ...getTask, status: 404, body: { error: { code: 'conflict', message: 'x', details: [] } } })).toMatch(/code/);
    expect(responseProblem({ method: 'GET', url: '/api/v1/nothing', status: 200, contentType: json, body: {} })).toMatch(/no documented route/);
  });

  it('refuses the wrong media type', () => {
    expect(responseProblem({ ...getTask, status: 200, contentType: 'text/plain', body: JSON.stringify(task) })).toMatch(/content-type/);
    const metrics = { method: 'GET', url: '/metrics', status: 200, contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '# HELP x\n' };
    expect(responseProblem({ ...metrics, listener: 'ops' })).toBeUndefined();
    // The ops routes are not on the API listener.
    expect(responseProblem(metrics)).toMatch(/no documented route/);
  });
});
