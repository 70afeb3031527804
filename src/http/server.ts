import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Duplex } from 'node:stream';
import { DispatchError } from '../domain/errors.js';
import { errorBody } from './errors.js';

export interface RunningServer {
  port: number;
  /** Stops accepting, lets in-flight requests finish, then closes idle keep-alive sockets. */
  close(): Promise<void>;
}

/**
 * Requests Node's HTTP parser refuses never reach the app: a request line and headers over its
 * 16 KiB limit, malformed HTTP, a request that did not arrive in time. Node would answer with a
 * bare status line; answer in the API's error shape instead, so every client sees one format.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // A response already under way on this socket cannot be followed by another one.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message]: [number, string, 'payload_too_large' | 'validation_failed', string] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'payload_too_large', 'request line and headers exceed the server limit']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'validation_failed', 'the request did not arrive in time']
        : [400, 'Bad Request', 'validation_failed', `malformed HTTP request (${error.code ?? 'parse error'})`];
  const body = JSON.stringify(errorBody(new DispatchError(code, message, [{ field: '(request)', message }])));
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

// `Hono<any>` because the sub-apps carry different Env types; only `fetch` is used here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function listen(app: Hono<any>, host: string, port: number): Promise<RunningServer> {
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  server.keepAliveTimeout = 65_000;
  server.on('clientError', answerClientError);
  // Keep-alive clients that never pause (agents polling) would hold server.close() open forever,
  // served on their old sockets: once closing, every response says Connection: close, and
  // sockets that fall idle are closed until none is left.
  // A connection that never sent a request is not "idle" to Node 20's closeIdleConnections(), and
  // HTTP clients open such connections (undici's pool connects for a queued request that another
  // socket then serves): server.close() would wait for it until headersTimeout. Once closing,
  // sockets that have not received a byte are closed too: no request is on them.
  let closing = false;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('request', (_req, res) => {
    if (closing) res.setHeader('connection', 'close');
  });
  const closeSilent = () => {
    server.closeIdleConnections();
    for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        const sweep = setInterval(closeSilent, 50);
        sweep.unref();
        server.close(() => {
          clearInterval(sweep);
          resolve();
        });
        closeSilent();
      }),
  };
}
