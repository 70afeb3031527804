/** An answer's status line and headers; its body is read once, as text or as it arrives. */
export interface HttpReply {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  header(name: string): string | null;
  text(): Promise<string>;
  /** The body chunk by chunk, for a stream; ending the loop early closes the body. */
  chunks(): AsyncIterable<Uint8Array>;
}

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Aborts the request, the answer's body included. */
  signal: AbortSignal;
}

/** Sends one request; rejects when no answer came (refused, reset, aborted). */
export type HttpSend = (request: HttpRequest) => Promise<HttpReply>;

/** HTTP over a fetch: the global one (browsers, Deno, Bun) or one given (a proxy's, a test's). */
export function fetchHttp(fetcher: typeof fetch): HttpSend {
  return async ({ method, url, headers, body, signal }) => {
    const response = await fetcher(url, { method, headers, body, signal });
    return {
      status: response.status,
      statusText: response.statusText,
      ok: response.ok,
      header: (name) => response.headers.get(name),
      text: () => response.text(),
      chunks: () => readerChunks(response),
    };
  };
}

async function* readerChunks(response: Response): AsyncGenerator<Uint8Array> {
  if (!response.body) return;
  // getReader rather than async iteration: not every browser iterates a ReadableStream.
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
    await response.body.cancel().catch(() => undefined);
  }
}

/** The little of node:http this uses, typed here: the client imports no Node module (it runs in browsers too). */
interface NodeAnswer extends AsyncIterable<Uint8Array> {
  statusCode?: number;
  statusMessage?: string;
  headers: Record<string, string | string[] | undefined>;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  once(event: 'end' | 'close', listener: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  destroy(): void;
}
interface NodeRequest {
  once(event: 'response', listener: (answer: NodeAnswer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  destroy(error: Error): void;
  end(body?: string): void;
}
interface NodeHttpModule {
  request(url: URL, options: { method: string; headers: Record<string, string> }): NodeRequest;
}

/**
 * HTTP over node:http with keep-alive, where the runtime has it. Node's fetch (undici) builds web
 * streams, Headers and transferable signals for every call: with 200 SDK agents in one process it
 * was half of that process's CPU in the round-trip benchmark (docs/BENCHMARKS.md). Found through
 * process.getBuiltinModule (Node 20.16+, Deno, Bun), so bundles for browsers never see an import
 * of node:http and fall back to fetch. undefined where it is missing.
 */
export function nodeHttp(): HttpSend | undefined {
  const runtime = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const http = runtime?.getBuiltinModule?.('node:http') as NodeHttpModule | undefined;
  const https = runtime?.getBuiltinModule?.('node:https') as NodeHttpModule | undefined;
  if (!http?.request || !https?.request) return undefined;
  return ({ method, url, headers, body, signal }) =>
    new Promise<HttpReply>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const target = new URL(url);
      // end(body) on a request not yet sent gives it a Content-Length.
      const request = (target.protocol === 'https:' ? https : http).request(target, { method, headers });
      const onAbort = () => request.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      signal.addEventListener('abort', onAbort, { once: true });
      const release = () => signal.removeEventListener('abort', onAbort);
      // on, not once: destroying a request after its answer came (an abort) emits a second error.
      request.on('error', (error) => {
        release();
        reject(signal.aborted ? signal.reason : error);
      });
      request.once('response', (response) => {
        // An error after this point (abort, reset) surfaces while the body is read.
        response.once('close', release);
        resolve(nodeReply(response, signal));
      });
      request.end(body);
    });
}

function nodeReply(response: NodeAnswer, signal: AbortSignal): HttpReply {
  const status = response.statusCode ?? 0;
  const header = (name: string): string | null => {
    const value = response.headers[name.toLowerCase()];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  };
  const failure = (error: unknown) => (signal.aborted ? signal.reason : error);
  return {
    status,
    statusText: response.statusMessage ?? '',
    ok: status >= 200 && status < 300,
    header,
    text: () =>
      new Promise<string>((resolve, reject) => {
        const decoder = new TextDecoder();
        let text = '';
        response.on('data', (chunk) => (text += decoder.decode(chunk, { stream: true })));
        response.once('end', () => resolve(text + decoder.decode()));
        // A body cut off (reset, aborted) ends in 'error'.
        response.once('error', (error) => reject(failure(error)));
      }),
    chunks: () => nodeChunks(response, failure),
  };
}

async function* nodeChunks(response: NodeAnswer, failure: (error: unknown) => unknown): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of response) yield chunk;
  } catch (error) {
    throw failure(error);
  } finally {
    response.destroy();
  }
}
