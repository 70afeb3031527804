import http from 'node:http';

/**
 * JSON over node:http with keep-alive sockets: the load generator's side of a request made as
 * cheap as Node makes it, as autocannon is for the bare route's yardstick. The creators of the
 * paced scenarios go through it; with fetch and the OpenAPI contract check of the tests'
 * ReplicaClient they took half of the benchmark process's CPU under the agent round trip, on the
 * same two cores as the replica and PostgreSQL they measure.
 */
export class LeanHttp {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  request(url: string, method: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: unknown }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const allHeaders = payload === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) };
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers: allHeaders, agent: this.agent, timeout: 15_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 15 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
