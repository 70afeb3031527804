import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll } from 'vitest';
import type { DispatchConfigInput } from '../../src/config/config.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { startTestDispatch, type TestDispatch } from './dispatch.js';
import { apiClient, type ApiClient } from './http.js';
import { startNatsServer, type TestNatsServer } from './nats-server.js';
import { waitFor } from './wait.js';

export interface DispatchOnNats {
  nats: TestNatsServer;
  database: TestDatabase;
  dispatch: TestDispatch;
  /** Calls as `requester` (the client's default when none is given). */
  api: ApiClient;
  /** The test's own connection to the NATS server, to read what Dispatch published. */
  nc: NatsConnection;
}

/**
 * The setup of a test file about what Dispatch tells the swarm: a NATS server and a database of
 * the file's own, one Dispatch publishing there (`config` gets the server's URL), a REST client
 * and a NATS connection, ready once the event stream exists; all stopped after the file. The
 * fields are filled in before the file's first test.
 */
export function useDispatchOnNats(config: (natsUrl: string) => DispatchConfigInput, requester?: string): DispatchOnNats {
  const env = {} as DispatchOnNats;
  beforeAll(async () => {
    env.nats = await startNatsServer();
    env.database = await createTestDatabase();
    env.dispatch = await startTestDispatch(env.database.url, config(env.nats.url));
    env.api = apiClient(env.dispatch.baseUrl, requester);
    env.nc = await connect({ servers: env.nats.url });
    await waitFor(() => env.dispatch.dispatch.events.status().streamReady, { what: 'stream provisioned' });
  });
  afterAll(async () => {
    await env.nc?.close();
    await env.dispatch?.stop();
    await env.database?.drop();
    await env.nats?.dispose();
  });
  return env;
}
