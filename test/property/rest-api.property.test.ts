import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { MAX_JSON_DEPTH } from '../../src/domain/storable.js';
import { taskPolicy } from '../../src/app.js';
import { createTaskFromRequest, rejectionBody } from '../../src/events/task-requests.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, testConfig, type TestDispatch } from '../helpers/dispatch.js';
import { agentRowsForComparison } from '../helpers/agent-rows.js';
import { assignDirectly, insertTasks } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';
import {
  agentHeader,
  bodyFor,
  contentTypeHeader,
  forgedCursor,
  headers,
  headerSafe,
  idempotencyKeyHeader,
  idSegment,
  METHODS,
  queryString,
  requestShape,
  toHeaderRecord,
  utf8OnTheWire,
  validAgentId,
  type Endpoint,
} from './arbitraries.js';
import { describeRequest, problemWithAnswer, rawClient, type RawClient, type RawRequest, type RawResponse } from './raw-http.js';

/**
 * Property-based tests over the whole REST API, on a real Dispatch and a real PostgreSQL.
 *
 * Whatever arrives (mutated bodies, hostile headers, odd ids, broken query strings, any method on
 * any path), the answer is a success or a 4xx in the API's error shape: never a 5xx, never a
 * dropped connection, and the process stays healthy. And a request from an agent with no rights
 * over a task (neither its requester, nor its assignee, nor an admin) never changes that task.
 *
 * Runs are bounded so the file takes well under a minute; fast-check prints the seed and the
 * shrunk request of any failure, which replays with `fc.assert(..., { seed, path })`.
 */

let database: TestDatabase;
let dispatch: TestDispatch;
let send: RawClient;
let db: Db;

const REQUESTER = 'prop-requester';
const WORKER = 'prop-worker';
/** No generator produces this scope, so no fuzzed agent can become a candidate for these tasks. */
const PROTECTED_SCOPE = 'prop-protected-scope-7d1';
const PLAYGROUND_WORKER = 'fz-playground-worker';

const json = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');
const as = (agent: string, extra: Record<string, string> = {}) => ({ 'x-agent-id': agent, 'content-type': 'application/json', ...extra });
const asAdmin = (agent = 'prop-admin') => as(agent, { authorization: `Bearer ${ADMIN_TOKEN}` });

/** Sends a request and fails with the request attached unless the answer has the property. */
async function expectWellFormed(request: RawRequest): Promise<RawResponse> {
  const response = await send(request).catch((error: unknown) => {
    throw new Error(`connection failed (${String(error)}) for ${describeRequest(request)}`);
  });
  const problem = problemWithAnswer(request, response);
  if (problem) throw new Error(`${problem}\n  request: ${describeRequest(request)}`);
  return response;
}

async function expectHealthy(): Promise<void> {
  const health = await fetch(`${dispatch.opsUrl}/health`);
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ status: 'ok' });
  const ready = await fetch(`${dispatch.opsUrl}/ready`);
  expect(ready.status).toBe(200);
}

async function apiOk(request: RawRequest, status = 200): Promise<any> {
  const response = await send(request);
  expect(response.status, `${describeRequest(request)} -> ${response.text.slice(0, 300)}`).toBe(status);
  return JSON.parse(response.text);
}

const protectedIds: Record<'pending' | 'assigned' | 'running' | 'completed' | 'failed' | 'cancelled', string> = {
  pending: '',
  assigned: '',
  running: '',
  completed: '',
  failed: '',
  cancelled: '',
};
const playgroundIds: string[] = [];
let realCursor = '';

async function createProtectedTask(title: string): Promise<string> {
  const task = await apiOk(
    { method: 'POST', path: '/api/v1/tasks', headers: as(REQUESTER), body: json({ title, scope: PROTECTED_SCOPE, context: { step: title } }) },
    201,
  );
  return task.id as string;
}

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.handle.db;
  dispatch = await startTestDispatch(database.url);
  send = rawClient(dispatch.baseUrl);

  // Tasks in known states, owned by REQUESTER and worked by WORKER, for the "no right, no change" property.
  protectedIds.pending = await createProtectedTask('pending');
  for (const state of ['assigned', 'running', 'completed', 'failed', 'cancelled'] as const) {
    const id = await createProtectedTask(state);
    protectedIds[state] = id;
    if (state === 'cancelled') {
      await apiOk({ method: 'PATCH', path: `/api/v1/tasks/${id}`, headers: as(REQUESTER), body: json({ status: 'cancelled' }) });
      continue;
    }
    await assignDirectly(db, id, WORKER);
    if (state === 'running' || state === 'completed') {
      await apiOk({ method: 'POST', path: `/api/v1/tasks/${id}/progress`, headers: as(WORKER), body: json({ percent: 10 }) });
    }
    if (state === 'completed') {
      await apiOk({ method: 'POST', path: `/api/v1/tasks/${id}/complete`, headers: as(WORKER), body: json({ result: { ok: true } }) });
    }
    if (state === 'failed') {
      await apiOk({ method: 'POST', path: `/api/v1/tasks/${id}/fail`, headers: as(WORKER), body: json({ error: 'no', retryable: false }) });
    }
  }
  // The broker marks a pending task nobody can take as unmatched once; let that happen first so
  // the snapshot is taken from a task at rest.
  await waitFor(
    async () => (await db.selectFrom('dispatch_tasks').select('unmatched_at').where('id', '=', protectedIds.pending).executeTakeFirst())?.unmatched_at ?? false,
    { what: 'the protected pending task to be marked unmatched' },
  );

  // Tasks anyone (admins included) may poke at in the other properties.
  playgroundIds.push(...(await insertTasks(db, 3, { requester: 'fz-playground', scope: 'fuzz' })));
  const [assigned] = await insertTasks(db, 1, { requester: 'fz-playground', scope: 'fuzz' });
  await assignDirectly(db, assigned!, PLAYGROUND_WORKER);
  playgroundIds.push(assigned!, ...(await insertTasks(db, 1, { requester: 'fz-playground', status: 'completed', assignee: PLAYGROUND_WORKER })));

  const page = await apiOk({ method: 'GET', path: '/api/v1/tasks?limit=1', headers: as('fz-reader') });
  realCursor = page.next_cursor as string;
}, 60_000);

afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

/** Everything an unauthorized request must not touch: the tasks' rows, their events, their agents. */
async function protectedSnapshot() {
  const ids = Object.values(protectedIds);
  const tasks = await db
    .selectFrom('dispatch_tasks')
    .select([
      'id',
      'status',
      'assignee',
      'attempt',
      'result',
      'error',
      'context',
      'retry_count',
      'deadline_at',
      'completed_at',
      'started_at',
      'updated_at',
    ])
    .where('id', 'in', ids)
    .orderBy('id')
    .execute();
  const events = await db
    .selectFrom('dispatch_task_events')
    .select(['task_id', (eb) => eb.fn.countAll<string>().as('n'), (eb) => eb.fn.max('id').as('last')])
    .where('task_id', 'in', ids)
    .groupBy('task_id')
    .orderBy('task_id')
    .execute();
  const agents = await agentRowsForComparison(db, [REQUESTER, WORKER]);
  return { tasks, events, agents };
}

describe('REST API under random and hostile input', () => {
  it('answers every method on every path with JSON: a success or a 4xx error, never a 5xx', async () => {
    const ids = [playgroundIds[0]!, 'not-a-uuid'];
    const routes = [
      '/api/v1/tasks',
      ...ids.flatMap((id) => ['', '/events', '/placement', '/complete', '/fail', '/progress', '/nope'].map((s) => `/api/v1/tasks/${id}${s}`)),
      '/api/v1/stats',
      '/api/v1/agents',
      '/api/v1/agents/fz-sweeper',
      '/api/v1/agents/fz-sweeper/drain',
      '/api/v1/agents/bad%20name/drain',
      '/',
      '/api/v1',
      '/nope',
    ];
    for (const path of routes) {
      for (const method of METHODS) {
        for (const hdrs of [as('fz-sweeper'), asAdmin(), {}]) {
          for (const body of method === 'GET' || method === 'HEAD' ? [undefined] : [undefined, json({}), json({ nonsense: true })]) {
            await expectWellFormed({ method, path, headers: hdrs, body });
          }
        }
      }
    }
    await expectHealthy();
  }, 60_000);

  it('property: any method, path, headers and body get a well-formed answer', async () => {
    const request = fc.record({
      shape: requestShape(playgroundIds, [PLAYGROUND_WORKER, 'fz-playground']),
      headers: headers(ADMIN_TOKEN, { allowAdmin: true }),
      chunked: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(request, async ({ shape, headers: h, chunked }) => {
        await expectWellFormed({ ...shape, headers: toHeaderRecord(h), chunked: chunked && shape.body !== undefined });
      }),
      { numRuns: 300 },
    );
    await expectHealthy();
  }, 120_000);

  it('property: mutated bodies from a caller entitled to the call reach the database and never break it', async () => {
    const endpoints: Endpoint[] = ['create', 'patch', 'complete', 'fail', 'progress', 'register'];
    const request = fc.constantFrom(...endpoints).chain((endpoint) =>
      fc.record({
        endpoint: fc.constant(endpoint),
        agent: validAgentId,
        body: bodyFor(endpoint),
        chunked: fc.boolean(),
        contentType: contentTypeHeader,
        idempotencyKey: idempotencyKeyHeader,
        viaAdmin: fc.boolean(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const hdrs: Record<string, string> = { 'x-agent-id': r.agent };
        if (r.contentType !== undefined) hdrs['content-type'] = headerSafe(r.contentType);
        let path: string;
        let method = 'POST';
        if (r.endpoint === 'create') {
          path = '/api/v1/tasks';
          if (r.idempotencyKey !== undefined) hdrs['idempotency-key'] = headerSafe(r.idempotencyKey);
        } else if (r.endpoint === 'patch') {
          const [id] = await insertTasks(db, 1, { requester: r.agent, scope: 'fuzz-target' });
          path = `/api/v1/tasks/${id}`;
          method = 'PATCH';
          if (r.viaAdmin) Object.assign(hdrs, { 'x-agent-id': 'fz-admin', authorization: `Bearer ${ADMIN_TOKEN}` });
        } else if (r.endpoint === 'register') {
          path = `/api/v1/agents/${r.agent}`;
          method = 'PUT';
        } else {
          const [id] = await insertTasks(db, 1, { requester: 'fz-owner', scope: 'fuzz-target' });
          await assignDirectly(db, id!, r.agent);
          path = `/api/v1/tasks/${id}/${r.endpoint}`;
        }
        const sent: RawRequest = { method, path, headers: hdrs, body: r.body, chunked: r.chunked };
        const response = await expectWellFormed(sent);
        if (response.status >= 300) return;
        // What was accepted must read back: the task, its events, the agent's entry.
        const reader = asAdmin('fz-reader');
        const body = JSON.parse(response.text) as { id?: string; name?: string };
        if (body.id !== undefined) {
          await expectWellFormed({ method: 'GET', path: `/api/v1/tasks/${body.id}`, headers: reader }).then((res) => expect(res.status).toBe(200));
          await expectWellFormed({ method: 'GET', path: `/api/v1/tasks/${body.id}/events`, headers: reader }).then((res) => expect(res.status).toBe(200));
          await expectWellFormed({ method: 'GET', path: `/api/v1/tasks/${body.id}/placement`, headers: reader }).then((res) => expect(res.status).toBe(200));
        }
        if (body.name !== undefined) {
          await expectWellFormed({ method: 'GET', path: `/api/v1/agents/${r.agent}`, headers: reader }).then((res) => expect(res.status).toBe(200));
        }
      }),
      { numRuns: 250 },
    );
    // And the lists of everything stored, page by page.
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=500&cursor=${cursor}` : '?limit=500';
      const page = await apiOk({ method: 'GET', path: `/api/v1/tasks${query}`, headers: as('fz-reader') });
      cursor = page.next_cursor as string | null;
    } while (cursor);
    await apiOk({ method: 'GET', path: '/api/v1/agents', headers: asAdmin() });
    await apiOk({ method: 'GET', path: '/api/v1/stats', headers: asAdmin() });
    await expectHealthy();
  }, 120_000);

  it('property: any query string on GET /api/v1/tasks gets a well-formed answer', async () => {
    const query = fc.oneof(
      { arbitrary: queryString(), weight: 6 },
      { arbitrary: forgedCursor.map((c) => `cursor=${c}`), weight: 2 },
      { arbitrary: fc.constantFrom(`cursor=${realCursor}`, `cursor=${realCursor}&cursor=x`, `limit=1&cursor=${realCursor}&status=pending`), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(query, agentHeader, fc.constantFrom('/api/v1/tasks', '/api/v1/tasks', '/api/v1/tasks', '/api/v1/tasks/'), async (q, agent, path) => {
        await expectWellFormed({ method: 'GET', path: `${path}?${q}`, headers: toHeaderRecord({ agent, extra: {} }) });
      }),
      { numRuns: 200 },
    );
    await expectHealthy();
  }, 60_000);

  it('property: a request from an agent with no rights over a task never changes it', async () => {
    const ids = Object.values(protectedIds);
    const intruder: fc.Arbitrary<string | string[] | undefined> = fc.oneof(
      { arbitrary: validAgentId.map((s) => `intruder-${s}`), weight: 4 },
      // Near misses of the entitled names: case, punctuation, bytes around them.
      {
        arbitrary: fc.constantFrom(
          'PROP-WORKER',
          'Prop-Requester',
          'prop-worker.',
          '.prop-requester',
          'prop-worker\u00a0',
          utf8OnTheWire('prop-wоrker'),
          'prop-worker,prop-requester',
          'prop%2Dworker',
        ),
        weight: 2,
      },
      { arbitrary: agentHeader.filter((a) => a === undefined || typeof a !== 'string' || ![REQUESTER, WORKER].includes(a.trim())), weight: 2 },
      { arbitrary: fc.constant<string[]>([WORKER, 'intruder-x']), weight: 1 },
    );
    // Plain, valid attempts at every change an intruder could want, and the fuzzed kind.
    const plainAttack = fc.oneof(
      fc.constantFrom(...ids).chain((id) =>
        fc.constantFrom<[string, string, unknown]>(
          ['PATCH', `/api/v1/tasks/${id}`, { status: 'cancelled' }],
          ['PATCH', `/api/v1/tasks/${id}`, { context: { hijacked: true } }],
          ['PATCH', `/api/v1/tasks/${id.toUpperCase()}`, { status: 'cancelled', context: null }],
          ['POST', `/api/v1/tasks/${id}/complete`, { result: { stolen: 1 } }],
          ['POST', `/api/v1/tasks/${id}/complete`, { result: { stolen: 1 }, attempt: 1 }],
          ['POST', `/api/v1/tasks/${id}/fail`, { error: 'x', retryable: false }],
          ['POST', `/api/v1/tasks/${id}/fail`, { error: 'x', attempt: 1 }],
          ['POST', `/api/v1/tasks/${id}/progress`, { percent: 99 }],
          ['POST', `/api/v1/tasks/${id}/progress`, { attempt: 1 }],
        ),
      ),
      fc.constantFrom(REQUESTER, WORKER).chain((a) =>
        fc.constantFrom<[string, string, unknown]>(
          ['PUT', `/api/v1/agents/${a}`, { capabilities: [PROTECTED_SCOPE], status: 'ready' }],
          ['POST', `/api/v1/agents/${a}/drain`, undefined],
          ['DELETE', `/api/v1/agents/${a}/drain`, undefined],
        ),
      ),
    ).map(([method, path, body]) => ({ method, path, body: body === undefined ? undefined : json(body) }));
    const request = fc.record({
      shape: fc.oneof({ arbitrary: plainAttack, weight: 2 }, { arbitrary: requestShape(ids, [REQUESTER, WORKER]), weight: 3 }),
      headers: headers(ADMIN_TOKEN, { allowAdmin: false, agent: intruder }),
    });
    const before = await protectedSnapshot();
    expect(before.tasks.map((t) => t.status).sort()).toEqual(['assigned', 'cancelled', 'completed', 'failed', 'pending', 'running']);
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const sent: RawRequest = { ...r.shape, headers: toHeaderRecord(r.headers) };
        const response = await expectWellFormed(sent);
        const after = await protectedSnapshot();
        if (JSON.stringify(after) !== JSON.stringify(before)) {
          throw new Error(`a request with no rights changed protected state (answer ${response.status} ${response.text.slice(0, 200)})\n  request: ${describeRequest(sent)}`);
        }
      }),
      { numRuns: 250 },
    );
    await expectHealthy();
  }, 120_000);

  it('property: odd ids in paths get a well-formed answer on every task and agent route', async () => {
    const routes = fc.constantFrom(
      ['GET', '/api/v1/tasks/{id}'],
      ['GET', '/api/v1/tasks/{id}/events'],
      ['GET', '/api/v1/tasks/{id}/placement'],
      ['PATCH', '/api/v1/tasks/{id}'],
      ['POST', '/api/v1/tasks/{id}/complete'],
      ['POST', '/api/v1/tasks/{id}/fail'],
      ['POST', '/api/v1/tasks/{id}/progress'],
      ['GET', '/api/v1/agents/{id}'],
      ['PUT', '/api/v1/agents/{id}'],
      ['POST', '/api/v1/agents/{id}/drain'],
      ['DELETE', '/api/v1/agents/{id}/drain'],
    );
    await fc.assert(
      fc.asyncProperty(routes, idSegment([]), fc.boolean(), async ([method, route], id, admin) => {
        const hdrs = admin ? asAdmin('fz-ids') : as('fz-ids');
        const body = method === 'GET' ? undefined : json({ status: 'cancelled', capabilities: ['x'] });
        await expectWellFormed({ method: method!, path: route!.replace('{id}', id), headers: hdrs, body });
      }),
      { numRuns: 150 },
    );
    await expectHealthy();
  }, 60_000);
});

/**
 * The bugs the properties above found, pinned as plain cases. Most were a 500 (PostgreSQL or
 * JSON.stringify refusing what the API had accepted) and are now a 400 naming the field; one was
 * Node's bare non-JSON status line; one was every request stalling 10 s, then 503.
 */
describe('bad input the properties found', () => {
  async function expectRefused(request: RawRequest, field: string): Promise<void> {
    const response = await expectWellFormed(request);
    const body = JSON.parse(response.text) as { error: { code: string; details: { field: string }[] } };
    expect(response.status, response.text).toBe(400);
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.details.map((d) => d.field)).toContain(field);
  }
  const rawJson = (text: string) => Buffer.from(text, 'utf8');

  async function assignedTo(agent: string): Promise<string> {
    const [id] = await insertTasks(db, 1, { requester: 'fz-regression', scope: 'regression' });
    await assignDirectly(db, id!, agent);
    return id!;
  }

  it('refuses NUL characters in text fields (PostgreSQL text cannot hold them)', async () => {
    const create = (body: string) => ({ method: 'POST', path: '/api/v1/tasks', headers: as('fz-nul'), body: rawJson(body) });
    await expectRefused(create('{"title":"a\\u0000b","scope":"s"}'), 'title');
    await expectRefused(create('{"title":"t","scope":"\\u0000"}'), 'scope');
    await expectRefused(create('{"title":"t","scope":"s","description":"\\u0000"}'), 'description');
    const id = await assignedTo('fz-nul');
    await expectRefused({ method: 'POST', path: `/api/v1/tasks/${id}/fail`, headers: as('fz-nul'), body: rawJson('{"error":"boom\\u0000"}') }, 'error');
    await expectRefused({ method: 'PUT', path: '/api/v1/agents/fz-nul', headers: as('fz-nul'), body: rawJson('{"capabilities":["a\\u0000b"]}') }, 'capabilities.0');
  });

  it('refuses NUL characters and unpaired surrogates anywhere in JSON fields (jsonb cannot hold them)', async () => {
    const id = await assignedTo('fz-jsonb');
    const worker = (action: string, body: string) => ({ method: 'POST', path: `/api/v1/tasks/${id}/${action}`, headers: as('fz-jsonb'), body: rawJson(body) });
    await expectRefused(worker('progress', '{"\\u0000":""}'), '\u0000');
    await expectRefused(worker('progress', '{"note":{"deep":["ok","\\ud800"]}}'), 'note.deep.1');
    await expectRefused(worker('complete', '{"result":{"a":"\\u0000"}}'), 'result.a');
    await expectRefused(worker('complete', '{"result":"\\udfff\\ud800"}'), 'result');
    const create = (body: string) => ({ method: 'POST', path: '/api/v1/tasks', headers: as('fz-jsonb'), body: rawJson(body) });
    await expectRefused(create('{"title":"t","scope":"s","context":{"k\\u0000":1}}'), 'context.k\u0000');
    await expectRefused(create('{"title":"t","scope":"s","context":"\\udc00"}'), 'context');
    const [owned] = await insertTasks(db, 1, { requester: 'fz-jsonb', scope: 'regression' });
    await expectRefused({ method: 'PATCH', path: `/api/v1/tasks/${owned}`, headers: as('fz-jsonb'), body: rawJson('{"status":"cancelled","context":"\\u0000"}') }, 'context');
    // A well-formed surrogate pair is an ordinary character and is stored.
    const ok = await expectWellFormed(create('{"title":"\\ud83d\\udca5","scope":"s","context":{"emoji":"\\ud83d\\udca5"}}'));
    expect(ok.status).toBe(201);
    expect(JSON.parse(ok.text)).toMatchObject({ title: '💥', context: { emoji: '💥' } });
  });

  it(`refuses JSON nested deeper than ${MAX_JSON_DEPTH} levels, long before JSON.stringify and PostgreSQL give up`, async () => {
    const deep = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    const create = (context: string) => ({ method: 'POST', path: '/api/v1/tasks', headers: as('fz-deep'), body: rawJson(`{"title":"t","scope":"s","context":${context}}`) });
    await expectRefused(create(deep(10_000)), 'context');
    await expectRefused(create(deep(200_000)), 'context');
    await expectRefused(create(`${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`), 'context');
    const id = await assignedTo('fz-deep');
    await expectRefused({ method: 'POST', path: `/api/v1/tasks/${id}/progress`, headers: as('fz-deep'), body: rawJson(`{"p":${deep(10_000)}}`) }, 'p');
    await expectRefused({ method: 'POST', path: `/api/v1/tasks/${id}/progress`, headers: as('fz-deep'), body: rawJson(deep(10_000)) }, '0');
    // Up to the limit, nesting is stored and reads back.
    const ok = await expectWellFormed(create(deep(MAX_JSON_DEPTH - 1)));
    expect(ok.status).toBe(201);
    const task = JSON.parse(ok.text) as { id: string };
    expect((await send({ method: 'GET', path: `/api/v1/tasks/${task.id}`, headers: as('fz-deep') })).status).toBe(200);
  });

  it('refuses a progress attempt beyond the integer column instead of failing the SQL', async () => {
    const id = await assignedTo('fz-attempt');
    for (const attempt of ['1e300', '2147483648', '9007199254740993']) {
      await expectRefused({ method: 'POST', path: `/api/v1/tasks/${id}/progress`, headers: as('fz-attempt'), body: rawJson(`{"attempt":${attempt}}`) }, 'attempt');
    }
    const ok = await expectWellFormed({ method: 'POST', path: `/api/v1/tasks/${id}/progress`, headers: as('fz-attempt'), body: rawJson('{"attempt":1}') });
    expect(ok.status).toBe(200);
  });

  it('refuses forged list cursors (a non-UUID id, a date PostgreSQL cannot hold) and NUL in filters', async () => {
    const cursor = (pair: unknown) => Buffer.from(JSON.stringify(pair)).toString('base64url');
    const list = (query: string) => ({ method: 'GET', path: `/api/v1/tasks?${query}`, headers: as('fz-cursor') });
    await expectRefused(list(`cursor=${cursor(['2024-01-01T00:00:00.000Z', '------------------------------------'])}`), 'query.cursor');
    await expectRefused(list(`cursor=${cursor(['2024-01-01T00:00:00.000Z', 'gggggggg-gggg-gggg-gggg-gggggggggggg'])}`), 'query.cursor');
    await expectRefused(list(`cursor=${cursor(['-271821-04-20T00:00:00.000Z', '00000000-0000-0000-0000-000000000000'])}`), 'query.cursor');
    await expectRefused(list('scope=a%00b'), 'query.scope');
    await expectRefused(list('cursor=x&scope=%ED%A0%80'), 'query.cursor');
    const ok = await expectWellFormed(list(`cursor=${cursor(['2999-01-01T00:00:00.000Z', '00000000-0000-0000-0000-000000000000'])}`));
    expect(ok.status).toBe(200);
  });

  it('rejects the same bodies when they come as swarm.task.request, instead of redelivering them forever', async () => {
    // The NATS path shares the schema with POST /api/v1/tasks; a database error there means "try
    // again later" (the message is redelivered), so an unstorable body has to be a rejection.
    const intake = { db, policy: taskPolicy(testConfig()), metrics: createMetrics() };
    let seq = 0;
    const request = (body: string) => createTaskFromRequest(intake, { data: rawJson(body), streamSeq: ++seq, timestampNanos: Date.now() * 1e6 });
    for (const [body, field] of [
      ['{"requester":"fz-nats","title":"a\\u0000b","scope":"s"}', 'title'],
      ['{"requester":"fz-nats","title":"t","scope":"s","context":{"k":"\\ud800"}}', 'context.k'],
      [`{"requester":"fz-nats","title":"t","scope":"s","context":${'['.repeat(10_000)}${']'.repeat(10_000)}}`, 'context'],
    ] as const) {
      const outcome = await request(body);
      expect(outcome.kind, body.slice(0, 100)).toBe('rejected');
      if (outcome.kind !== 'rejected') continue;
      expect(outcome.error.details.map((d) => d.field)).toContain(field);
      expect(() => JSON.stringify(rejectionBody(outcome.error, outcome.original))).not.toThrow();
    }
    expect((await request('{"requester":"fz-nats","title":"fine","scope":"s"}')).kind).toBe('created');
  });

  /** Writes raw bytes on a fresh connection and returns everything the server sends before closing. */
  function rawExchange(bytes: string): Promise<string> {
    const { port } = new URL(dispatch.baseUrl);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.end(bytes, 'latin1'));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
    });
  }

  it("answers requests Node's HTTP parser refuses in the error shape too, not with a bare status line", async () => {
    const longUrl = await expectWellFormed({ method: 'GET', path: `/api/v1/tasks?scope=${'a'.repeat(20_000)}`, headers: as('fz-big') });
    expect(longUrl.status).toBe(431);
    const bigHeader = await expectWellFormed({ method: 'GET', path: '/api/v1/tasks', headers: as('a'.repeat(20_000)) });
    expect(bigHeader.status).toBe(431);
    for (const request of [
      'GET /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-Agent-ID: a\r\nthis is not a header\r\n\r\n',
      'BREW /api/v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'GET /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-Agent-ID: a\u0000b\r\n\r\n',
    ]) {
      const answer = await rawExchange(request);
      expect(answer, JSON.stringify(request)).toMatch(/^HTTP\/1\.1 400 /);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string; details: unknown[] } };
      expect(body.error.code).toBe('validation_failed');
    }
    await expectHealthy();
  });

  it('keeps answering while assignment passes pile up (they must not take the whole pool and wait on each other)', async () => {
    // Found as 10 s stalls of every request during the properties: each assignment:run job pinned
    // a connection for its session locks and then waited for a second one for its batch; with as
    // many jobs as free connections, none got one until the pool's connect timeout.
    const assigner = dispatch.dispatch.assignment.assigner;
    await apiOk({ method: 'PUT', path: '/api/v1/agents/fz-pile-worker', headers: as('fz-pile-worker'), body: json({ capabilities: ['pile'], max_concurrent: 100_000 }) });
    const passes: Promise<void>[] = [];
    let slowest = 0;
    for (let round = 0; round < 20; round++) {
      await insertTasks(db, 20, { requester: 'fz-pile', scope: 'pile' });
      passes.push(assigner.drain(() => false), assigner.drain(() => false));
      const started = Date.now();
      const answer = await expectWellFormed({ method: 'GET', path: '/api/v1/tasks?limit=1', headers: as('fz-pool') });
      expect(answer.status).toBe(200);
      slowest = Math.max(slowest, Date.now() - started);
    }
    const outcomes = await Promise.allSettled(passes);
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    expect(slowest).toBeLessThan(2_000);
  });
});
