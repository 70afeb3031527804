import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, MAX_JSON_NODES } from '../../src/domain/storable.js';
import { useTaskApi } from '../helpers/task-api.js';
import { assignDirectly, createTask, eventNames, expectError } from '../helpers/tasks.js';

/**
 * Bad input costs little and changes nothing: bodies are checked in one pass, with limits on
 * depth and on the number of values, each refused with a 400 naming the limit; a body that is
 * not JSON is a 415; a PATCH that cancels and replaces the context is one statement.
 */

const { database, api } = await useTaskApi();

const nestedArrays = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

describe('request bodies', () => {
  it(`refuses context nested deeper than ${MAX_JSON_DEPTH} levels, naming the field and the limit`, async () => {
    const within = await api('POST', '/api/v1/tasks', {
      rawBody: `{"title":"deep","scope":"s","context":${nestedArrays(MAX_JSON_DEPTH - 1)}}`,
    });
    expect(within.status).toBe(201);
    const beyond = await api('POST', '/api/v1/tasks', {
      rawBody: `{"title":"deeper","scope":"s","context":${nestedArrays(MAX_JSON_DEPTH + 1)}}`,
    });
    expectError(beyond, 400, 'validation_failed');
    expect(beyond.body.error.details).toEqual([{ field: 'context', message: `JSON nested more than ${MAX_JSON_DEPTH} levels deep (the limit)` }]);
  });

  it(`refuses a body holding more than ${MAX_JSON_NODES} values, naming the limit`, async () => {
    const context = Array.from({ length: MAX_JSON_NODES + 1 }, () => 0);
    const response = await api('POST', '/api/v1/tasks', { body: { title: 'wide', scope: 's', context } });
    expectError(response, 400, 'validation_failed');
    expect(response.body.error.details).toEqual([{ field: 'context', message: `JSON holds more than ${MAX_JSON_NODES} values (the limit)` }]);
  });

  it('answers 415 to a body that is not sent as JSON, and accepts application/json with a charset', async () => {
    const form = await api('POST', '/api/v1/tasks', {
      rawBody: '{"title":"form","scope":"s"}',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectError(form, 415, 'unsupported_media_type');
    expect(form.body.error.details).toEqual([{ field: 'Content-Type', message: 'must be application/json' }]);
    const charset = await api('POST', '/api/v1/tasks', {
      rawBody: '{"title":"charset","scope":"s"}',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(charset.status).toBe(201);
  });

  it('holds the comma-string form of capabilities to the same 500-tag cap as the list', async () => {
    const tags = Array.from({ length: 501 }, (_, i) => `t${i}`);
    const asText = await api('PUT', '/api/v1/agents/wide-agent', { agent: 'wide-agent', body: { capabilities: tags.join(',') } });
    expectError(asText, 400, 'validation_failed');
    const asList = await api('PUT', '/api/v1/agents/wide-agent', { agent: 'wide-agent', body: { capabilities: tags } });
    expectError(asList, 400, 'validation_failed');
    const fits = await api('PUT', '/api/v1/agents/wide-agent', { agent: 'wide-agent', body: { capabilities: tags.slice(0, 500).join(',') } });
    expect(fits.status).toBe(200);
  });
});

describe('PATCH with a cancel and a new context', () => {
  it('does both in one change: the context, then the cancellation, in the audit trail', async () => {
    const task = await createTask(api, { context: { v: 1 } });
    const response = await api('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled', context: { v: 2 } } });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: 'cancelled', context: { v: 2 } });
    expect(await eventNames(database.handle.db, task.id)).toEqual(['created', 'context_updated', 'cancelled']);
  });

  it('changes nothing on a finished task: 409, and the context stays', async () => {
    const task = await createTask(api, { context: { v: 1 } });
    const assigned = await assignDirectly(database.handle.db, task.id, 'worker-bad-input');
    const done = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-bad-input', body: { attempt: assigned.attempt, result: {} } });
    expect(done.status).toBe(200);
    const response = await api('PATCH', `/api/v1/tasks/${task.id}`, { body: { status: 'cancelled', context: { v: 2 } } });
    expectError(response, 409, 'conflict');
    const after = await api('GET', `/api/v1/tasks/${task.id}`);
    expect(after.body).toMatchObject({ status: 'completed', context: { v: 1 } });
  });
});
