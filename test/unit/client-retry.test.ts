import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DispatchApiError, DispatchClient, DispatchUnreachableError, parseRetryAfter } from '../../src/client/index.js';
import { freePort } from '../helpers/replica-process.js';

/**
 * The client's retries against a real loopback HTTP server that answers from a script: each
 * request gets the next scripted answer (the last one repeats), and is recorded with its headers
 * and the time it arrived.
 */
interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}
interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function scriptedServer(script: Answer[]) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ method: req.method!, path: req.url!, headers: req.headers, body, at: Date.now() });
      const answer = script[Math.min(received.length, script.length) - 1]!;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(JSON.stringify(answer.body ?? {}));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

const limited = (retryAfter: string): Answer => ({
  status: 429,
  headers: { 'retry-after': retryAfter },
  body: { error: { code: 'rate_limited', message: `rate limit exceeded; retry in ${retryAfter} s`, details: [] } },
});
const unavailable = (retryAfter?: string): Answer => ({
  status: 503,
  headers: retryAfter ? { 'retry-after': retryAfter } : {},
  body: { error: { code: 'unavailable', message: 'database unavailable', details: [] } },
});
const task = { id: '6f1c0a52-4a0e-4c4b-9d56-0d7c1b7c3f10', status: 'pending', attempt: 0 };

/** Both of the client's HTTP paths: node:http (its default under Node) and a fetch. */
const paths = [
  { path: 'node:http', options: {} },
  { path: 'fetch', options: { fetch: globalThis.fetch } },
];

describe.each(paths)('over $path, the client retries', ({ options: http }) => {
  it('a 429 after the Retry-After the server gave, then returns the answer', async () => {
    const server = await scriptedServer([limited('1'), { status: 200, body: { tasks: [], next_cursor: null } }]);
    const client = new DispatchClient({ ...http, url: server.url, token: 't' });
    const page = await client.tasks.list();
    expect(page).toEqual({ tasks: [], next_cursor: null });
    expect(server.received).toHaveLength(2);
    // Retry-After: 1 means no sooner than a second later (a little slack for timer granularity).
    expect(server.received[1]!.at - server.received[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('a create answered 503 with the same Idempotency-Key, so Dispatch can never make it twice', async () => {
    const server = await scriptedServer([unavailable('0'), unavailable(), { status: 201, body: task }]);
    const client = new DispatchClient({ ...http, url: server.url, retry: { baseDelayMs: 10 } });
    const created = await client.tasks.create({ title: 't', scope: 's' });
    expect(created.id).toBe(task.id);
    const keys = server.received.map((r) => r.headers['idempotency-key']);
    expect(keys).toHaveLength(3);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    // A second create is another request: a new key.
    await client.tasks.create({ title: 't', scope: 's' });
    expect(server.received.at(-1)!.headers['idempotency-key']).not.toBe(keys[0]);
  });

  it('a bounded number of times, then throws the API error with its status, code and Retry-After', async () => {
    const server = await scriptedServer([unavailable('0')]);
    const client = new DispatchClient({ ...http, url: server.url, retry: { retries: 2 } });
    const error = await client.stats().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DispatchApiError);
    expect(error).toMatchObject({ status: 503, code: 'unavailable', message: 'database unavailable', retryAfterMs: 0 });
    expect(server.received).toHaveLength(3);
  });

  it('not at all when Retry-After is longer than it may wait: the caller decides', async () => {
    const server = await scriptedServer([limited('120')]);
    const client = new DispatchClient({ ...http, url: server.url, retry: { maxDelayMs: 5_000 } });
    const error = (await client.stats().catch((e: unknown) => e)) as DispatchApiError;
    expect(error.code).toBe('rate_limited');
    expect(error.retryAfterMs).toBe(120_000);
    expect(server.received).toHaveLength(1);
  });

  it('never on an answer a retry cannot change, which is thrown with the fields it names', async () => {
    const details = [{ field: 'scope', message: 'required' }];
    const server = await scriptedServer([{ status: 400, body: { error: { code: 'validation_failed', message: 'invalid task: scope', details } } }]);
    const client = new DispatchClient({ ...http, url: server.url });
    const error = (await client.tasks.create({ title: 't' } as never).catch((e: unknown) => e)) as DispatchApiError;
    expect(error).toBeInstanceOf(DispatchApiError);
    expect(error).toMatchObject({ status: 400, code: 'validation_failed', message: 'invalid task: scope', details });
    expect(error.fields).toEqual(['scope']);
    expect(server.received).toHaveLength(1);
  });

  it('on the next replica when one does not answer, and says which it could not reach when none does', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const server = await scriptedServer([{ status: 200, body: task }]);
    const client = new DispatchClient({ ...http, url: [down, server.url] });
    expect((await client.tasks.get(task.id)).id).toBe(task.id);
    expect(client.transport.baseUrl).toBe(server.url);
    const nobody = new DispatchClient({ ...http, url: down, retry: { retries: 1, baseDelayMs: 10 } });
    const error = await nobody.stats().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DispatchUnreachableError);
    expect((error as Error).message).toContain(down);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });
  it('speaks TLS to an https URL', async () => {
    // A raw TCP listener: the first byte a TLS client sends is a handshake record (0x16).
    const firstBytes: number[] = [];
    const listener = createNetServer((socket) => socket.once('data', (data: Buffer) => (firstBytes.push(data[0]!), socket.destroy())));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      const client = new DispatchClient({ ...http, url: `https://127.0.0.1:${(listener.address() as AddressInfo).port}`, retry: { retries: 0 } });
      expect(await client.tasks.get(task.id).catch((e: unknown) => e)).toBeInstanceOf(DispatchUnreachableError);
      expect(firstBytes).toEqual([0x16]);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});

describe.each(paths)('over $path, a call that gets no answer', ({ options: http }) => {
  /** A server that never answers its first `silent` requests, then answers each with `task`. */
  async function silentServer(silent: number) {
    let seen = 0;
    const server = createServer((req, res) => {
      seen += 1;
      if (seen <= silent) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(task));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, tries: () => seen };
  }
  afterEach(() => servers.forEach((s) => s.closeAllConnections()));

  it('gives up on a try after timeoutMs and tries again', async () => {
    const silent = await silentServer(1);
    const client = new DispatchClient({ ...http, url: silent.url, timeoutMs: 200, retry: { retries: 1, baseDelayMs: 10 } });
    const started = Date.now();
    expect((await client.tasks.get(task.id)).id).toBe(task.id);
    expect(silent.tries()).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('tries again when an answer is cut off halfway through its body', async () => {
    let seen = 0;
    const server = createServer((req, res) => {
      seen += 1;
      const body = JSON.stringify(task);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      if (seen === 1) {
        res.write(body.slice(0, 10));
        setImmediate(() => res.destroy());
      } else res.end(body);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new DispatchClient({ ...http, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, retry: { retries: 1, baseDelayMs: 10 } });
    expect((await client.tasks.get(task.id)).id).toBe(task.id);
    expect(seen).toBe(2);
  });

  it('ends at once, untried again, when the caller aborts it', async () => {
    const silent = await silentServer(Infinity);
    const client = new DispatchClient({ ...http, url: silent.url, timeoutMs: 30_000 });
    const controller = new AbortController();
    const call = client.transport.call('GET', `/api/v1/tasks/${task.id}`, { signal: controller.signal }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(new Error('caller gave up')), 50);
    expect(((await call) as Error).message).toBe('caller gave up');
    expect(silent.tries()).toBe(1);
  });
});

describe('Retry-After', () => {
  it('is read as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3_000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
