import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const HOP_BY_HOP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'content-encoding']);

export interface LossyProxy {
  url: string;
  /** Requests that reached Dispatch through the proxy, as "METHOD /path". */
  forwarded: string[];
  /**
   * The next request matching `method` and `path` is forwarded and answered by Dispatch, and then
   * its connection is cut before the answer reaches the client: a write that took effect whose
   * answer was lost (a replica killed at that instant, a network fault).
   */
  loseAnswerOnce(method: string, path: RegExp): void;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A real loopback HTTP proxy in front of Dispatch that can lose answers on request. */
export async function lossyProxy(target: string): Promise<LossyProxy> {
  const forwarded: string[] = [];
  let lose: { method: string; path: RegExp } | null = null;
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name) && typeof value === 'string') headers[name] = value;
      forwarded.push(`${req.method} ${req.url}`);
      const answer = await fetch(`${target}${req.url}`, { method: req.method, headers, body: body.length > 0 ? body : undefined });
      const text = Buffer.from(await answer.arrayBuffer());
      if (lose && req.method === lose.method && lose.path.test(req.url ?? '')) {
        lose = null;
        req.socket.destroy();
        return;
      }
      const out: Record<string, string> = {};
      answer.headers.forEach((value, name) => {
        if (!HOP_BY_HOP.has(name)) out[name] = value;
      });
      res.writeHead(answer.status, out);
      res.end(text);
    })().catch(() => req.socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forwarded,
    loseAnswerOnce: (method, path) => void (lose = { method, path }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
