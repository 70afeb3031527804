import fc from 'fast-check';
import { connect, type NatsConnection, type Subscription } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `swarm.task.request` under hostile input: whatever arrives, each message ends as exactly one
 * task or exactly one `swarm.dispatch.rejected`, the consumer keeps consuming, and the replica
 * stays healthy. Nothing is redelivered forever.
 */
let nats: TestNatsServer;
let database: TestDatabase;
let replica: TestDispatch;
let nc: NatsConnection;
let rejections: Subscription;
let rejected = 0;

beforeAll(async () => {
  nats = await startNatsServer();
  database = await createTestDatabase();
  replica = await startTestDispatch(database.url, { hermes: { url: nats.url } });
  nc = await connect({ servers: nats.url });
  rejections = nc.subscribe('swarm.dispatch.rejected', { callback: () => (rejected += 1) });
  await waitFor(() => replica.dispatch.events.status().consumingRequests, { what: 'consumer attached' });
});
afterAll(async () => {
  rejections?.unsubscribe();
  await nc?.close();
  await replica?.stop();
  await database?.drop();
  await nats?.dispose();
});

const validRequest = fc.record({
  requester: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
  title: fc.string({ minLength: 1, maxLength: 40 }),
  scope: fc.stringMatching(/^[a-z]{1,10}$/),
  priority: fc.integer({ min: 1, max: 5 }),
  context: fc.jsonValue({ maxDepth: 3 }),
  timeout_ms: fc.integer({ min: 1, max: 600_000 }),
  max_retries: fc.integer({ min: 0, max: 5 }),
});

const hostileValue = fc.oneof(
  fc.constant(null),
  fc.constant('\u0000'),
  fc.constant('\ud800'),
  fc.constant("'; DROP TABLE dispatch_tasks; --"),
  fc.constant(1e308),
  fc.constant(-1),
  fc.constant(2 ** 31),
  fc.string({ maxLength: 5_000 }),
  fc.jsonValue({ maxDepth: 4 }),
);

/** A valid request with one field dropped, replaced by a hostile value, or an unknown field added. */
const mutatedRequest = fc.tuple(validRequest, fc.constantFrom('requester', 'title', 'scope', 'priority', 'context', 'timeout_ms', 'max_retries', 'bogus'), fc.boolean(), hostileValue).map(
  ([request, field, drop, value]) => {
    const copy: Record<string, unknown> = { ...request };
    if (drop) delete copy[field];
    else copy[field] = value;
    return JSON.stringify(copy);
  },
);

const deeplyNested = fc.integer({ min: 150, max: 20_000 }).map((depth) => `{"requester":"deep","title":"t","scope":"s","context":${'['.repeat(depth)}${']'.repeat(depth)}}`);

const anyMessage = fc.oneof(
  validRequest.map((r) => JSON.stringify(r)),
  mutatedRequest,
  deeplyNested,
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
  fc.constantFrom('', '{', '[]', 'null', '42', '"text"', '{"requester":'),
);

async function outcomes(): Promise<number> {
  const text = await (await fetch(`${replica.opsUrl}/metrics`)).text();
  let total = 0;
  for (const match of text.matchAll(/^dispatch_events_task_requests_total\{outcome="(\w+)"\} (\S+)$/gm)) {
    if (match[1] !== 'error') total += Number(match[2]);
  }
  return total;
}

describe('swarm.task.request fuzzing', () => {
  it('turns every message into exactly one task or one rejection, and keeps consuming', async () => {
    const js = nc.jetstream();
    const messages = fc.sample(anyMessage, { numRuns: 250, seed: 20261123 });
    const tasksBefore = (await database.handle.db.selectFrom('dispatch_tasks').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;
    for (const message of messages) await js.publish('swarm.task.request', new TextEncoder().encode(message));
    await waitFor(async () => (await outcomes()) >= messages.length, { what: 'every message handled', timeoutMs: 30_000 });
    const tasksAfter = (await database.handle.db.selectFrom('dispatch_tasks').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;
    await waitFor(() => Number(tasksAfter) - Number(tasksBefore) + rejected >= messages.length, { what: 'rejections delivered' });
    expect(Number(tasksAfter) - Number(tasksBefore) + rejected).toBe(messages.length);
    expect((await fetch(`${replica.opsUrl}/health`)).status).toBe(200);

    // Still consuming: a valid request after the storm becomes a task.
    await js.publish('swarm.task.request', new TextEncoder().encode(JSON.stringify({ requester: 'after-storm', title: 'ok', scope: 'calm' })));
    await waitFor(async () => (await database.handle.db.selectFrom('dispatch_tasks').select('id').where('requester', '=', 'after-storm').execute()).length === 1, {
      what: 'a valid request after the fuzzing',
    });
  });
});
