import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TASK_REQUEST_CONSUMER, EVENT_STREAM } from '../../src/events/subjects.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch } from '../helpers/dispatch.js';
import { readStream, startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Who may ask for work over NATS: hermes.requesters accepts only the listed requesters (the rest
 * are rejected, publicly, and create nothing); hermes.accept_requests false takes no requests at
 * all, leaving them to another service.
 */
let nats: TestNatsServer;
let database: TestDatabase;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  database = await createTestDatabase();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await database?.drop();
  await nats?.dispose();
});

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

async function tasksOf(requester: string) {
  return await database.handle.db.selectFrom('dispatch_tasks').select('id').where('requester', '=', requester).execute();
}

describe('swarm.task.request policy', () => {
  it('accepts only the requesters hermes.requesters lists, and says why it rejects the others', async () => {
    const replica = await startTestDispatch(database.url, { hermes: { url: nats.url, requesters: ['planner-ok'] } });
    try {
      await waitFor(() => replica.dispatch.events.status().consumingRequests, { what: 'consumer attached' });
      const js = nc.jetstream();
      await js.publish('swarm.task.request', encode({ requester: 'mallory', title: 'steal', scope: 'x' }));
      await js.publish('swarm.task.request', encode({ requester: 'planner-ok', title: 'fine', scope: 'x' }));
      await waitFor(async () => (await tasksOf('planner-ok')).length === 1, { what: 'the allowed request created' });
      const rejected = await waitFor(
        async () => (await readStream(nc)).find((m) => m.subject === 'swarm.dispatch.rejected'),
        { what: 'the rejection published' },
      );
      expect(rejected.body).toMatchObject({ code: 'forbidden', details: [{ field: 'requester' }], original: { requester: 'mallory' } });
      expect(await tasksOf('mallory')).toEqual([]);
    } finally {
      await replica.stop();
    }
  });

  it('takes no requests with hermes.accept_requests false: no consumer, nothing created', async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.consumers.delete(EVENT_STREAM, TASK_REQUEST_CONSUMER).catch(() => undefined);
    const replica = await startTestDispatch(database.url, { hermes: { url: nats.url, accept_requests: false } });
    try {
      await waitFor(() => replica.dispatch.events.status().streamReady, { what: 'stream provisioned' });
      await nc.jetstream().publish('swarm.task.request', encode({ requester: 'someone', title: 'ignored', scope: 'x' }));
      expect(replica.dispatch.events.status().consumingRequests).toBe(false);
      await expect(jsm.consumers.info(EVENT_STREAM, TASK_REQUEST_CONSUMER)).rejects.toThrow(/consumer not found/);
      expect(await tasksOf('someone')).toEqual([]);
    } finally {
      await replica.stop();
    }
  });
});
