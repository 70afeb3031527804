import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * How a fake misbehaves: `error` answers 500, `garbage` answers 200 with a body that is not JSON,
 * `malformed` answers 200 with JSON of the wrong shape, `hang` never answers (until close()).
 */
export type FailureMode = 'error' | 'garbage' | 'malformed' | 'hang';

export interface RecordedCall {
  method: string;
  path: string;
  /** The Authorization header as received (undefined when absent). */
  authorization: string | undefined;
}

export interface FakeReply {
  status: number;
  body?: unknown;
}

/**
 * A real HTTP server on 127.0.0.1 with an ephemeral port, driven from the test through methods
 * rather than HTTP. Subclasses route requests; this base records calls, checks the bearer token
 * and injects failures. Emits 'request' with each RecordedCall.
 */
export abstract class FakeHttpServer extends EventEmitter {
  readonly calls: RecordedCall[] = [];
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private failure: { mode: FailureMode; remaining: number } | null = null;
  private port = 0;

  protected constructor(private readonly token: string | undefined) {
    super();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected abstract route(method: string, path: string): FakeReply;

  /** Starts listening; resolves once the port is known. */
  async listen(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Misbehave on the next `times` requests (every request until recover() when omitted). */
  failWith(mode: FailureMode, times = Number.POSITIVE_INFINITY): void {
    this.failure = { mode, remaining: times };
  }

  recover(): void {
    this.failure = null;
  }

  resetCalls(): void {
    this.calls.length = 0;
  }

  callsTo(method: string, path: string): RecordedCall[] {
    return this.calls.filter((call) => call.method === method && call.path === path);
  }

  /** Closes the server, dropping hung requests and keep-alive sockets. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const call: RecordedCall = { method: req.method ?? 'GET', path, authorization: req.headers.authorization };
    this.calls.push(call);
    this.emit('request', call);
    // Drain the request body (none is expected) so the socket can be reused.
    req.resume();
    if (this.failure && this.failure.remaining > 0) {
      this.failure.remaining -= 1;
      const mode = this.failure.mode;
      if (this.failure.remaining <= 0) this.failure = null;
      if (mode === 'hang') return;
      if (mode === 'error') return void send(res, { status: 500, body: { error: 'injected failure' } });
      if (mode === 'malformed') return void send(res, { status: 200, body: { unexpected: [1, 2, 3] } });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"this is": not json');
      return;
    }
    if (this.token !== undefined && call.authorization !== `Bearer ${this.token}`) {
      return void send(res, { status: 401, body: { error: 'unauthorized' } });
    }
    send(res, this.route(call.method, path));
  }
}

function send(res: ServerResponse, reply: FakeReply): void {
  if (reply.body === undefined) {
    res.writeHead(reply.status);
    res.end();
    return;
  }
  res.writeHead(reply.status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(reply.body));
}
