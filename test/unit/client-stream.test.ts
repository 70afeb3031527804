import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DispatchClient, type AssignmentEvent } from '../../src/client/index.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The client's assignment stream against a loopback server that writes the event stream by hand,
 * over both of the client's HTTP paths: node:http (its default under Node) and a fetch.
 */
const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

interface Connection {
  headers: IncomingHttpHeaders;
  res: ServerResponse;
}

async function streamServer() {
  const connections: Connection[] = [];
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.flushHeaders();
    connections.push({ headers: req.headers, res });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections };
}

const assigned = (id: string, title: string) =>
  `id: ${id}\nevent: assigned\ndata: ${JSON.stringify({ task: { id: `task-${title}`, title, status: 'assigned', attempt: 1 } })}\n\n`;

const paths = [
  { path: 'node:http', options: {} },
  { path: 'fetch', options: { fetch: globalThis.fetch } },
];

describe.each(paths)('the assignment stream over $path', ({ options }) => {
  it('delivers events split across writes, in order, each once', async () => {
    const server = await streamServer();
    const client = new DispatchClient({ url: server.url, agent: 'a', ...options });
    const got: AssignmentEvent[] = [];
    const subscription = client.subscribe('a', { onEvent: (e) => void got.push(e) });
    await waitFor(() => server.connections.length === 1, { what: 'stream open' });
    const text = assigned('1', 'one') + ': keepalive\n\n' + assigned('2', 'two') + assigned('2', 'two');
    for (const part of [text.slice(0, 7), text.slice(7, 50), text.slice(50)]) server.connections[0]!.res.write(part);
    await waitFor(() => got.length === 2, { what: 'two events' });
    subscription.close();
    await subscription.done;
    expect(got.map((e) => e.type === 'assigned' && e.task.title)).toEqual(['one', 'two']);
    expect(subscription.lastEventId).toBe('2');
  });

  it('drops a connection silent past idleTimeoutMs and resumes after the last event; keepalives hold it open', async () => {
    const server = await streamServer();
    const client = new DispatchClient({ url: server.url, agent: 'a', ...options });
    const reconnects: string[] = [];
    const got: AssignmentEvent[] = [];
    const subscription = client.subscribe('a', {
      idleTimeoutMs: 300,
      onEvent: (e) => void got.push(e),
      onReconnect: (error) => void reconnects.push((error as Error).message),
    });
    await waitFor(() => server.connections.length === 1, { what: 'stream open' });
    server.connections[0]!.res.write(assigned('5', 'five'));
    // Keepalives every 100 ms for 900 ms: three idle timeouts' worth, and no reconnection.
    for (let i = 0; i < 9; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      server.connections[0]!.res.write(': keepalive\n\n');
    }
    expect(server.connections).toHaveLength(1);
    // Then silence: the client gives up on the connection and opens another, resuming after id 5.
    await waitFor(() => server.connections.length === 2, { what: 'reconnected after silence', timeoutMs: 5_000 });
    expect(reconnects[0]).toMatch(/no keepalive for 300 ms/);
    expect(server.connections[1]!.headers['last-event-id']).toBe('5');
    subscription.close();
    await subscription.done;
    expect(got).toHaveLength(1);
  });
});
