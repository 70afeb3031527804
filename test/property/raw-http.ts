import http from 'node:http';
import { responseProblem } from '../helpers/openapi-contract.js';

/**
 * A deliberately low-level HTTP client for the fuzzing tests. `fetch` refuses much of what a
 * careless or hostile client can send (some methods, duplicate headers, Latin-1 header bytes,
 * hand-made chunked bodies), so requests go through `node:http` on a fresh connection each: a
 * dropped connection, a reset or a hang shows up as a rejected promise, never as a retry.
 */

export interface RawRequest {
  method: string;
  /** Request target as sent: already percent-encoded where the test wants it to be. */
  path: string;
  /** Header values are Latin-1 strings (what goes on the wire byte for byte); arrays repeat the header. */
  headers?: Record<string, string | string[]>;
  body?: Buffer;
  /** Send the body as two chunks with Transfer-Encoding: chunked instead of a Content-Length. */
  chunked?: boolean;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** Describes a request briefly for failure messages (bodies are cut, they can be megabytes). */
export function describeRequest(request: RawRequest): string {
  const body = request.body ? request.body.toString('utf8') : '';
  const shownBody = body.length > 300 ? `${body.slice(0, 300)}… (${request.body!.length} bytes)` : body;
  const headers = JSON.stringify(request.headers ?? {}, (_k, v: unknown) =>
    typeof v === 'string' && v.length > 120 ? `${v.slice(0, 120)}… (${v.length} chars)` : v,
  );
  const path = request.path.length > 300 ? `${request.path.slice(0, 300)}… (${request.path.length} chars)` : request.path;
  return `${request.method} ${path} headers=${headers}${request.chunked ? ' (chunked)' : ''} body=${JSON.stringify(shownBody)}`;
}

export function rawClient(baseUrl: string, timeoutMs = 20_000) {
  const { hostname, port } = new URL(baseUrl);
  return function send(request: RawRequest): Promise<RawResponse> {
    return new Promise<RawResponse>((resolve, reject) => {
      const headers: Record<string, string | string[]> = { ...request.headers };
      const hasLength = Object.keys(headers).some((h) => h.toLowerCase() === 'content-length');
      if (request.body && !request.chunked && !hasLength) headers['content-length'] = String(request.body.length);
      if (request.chunked) headers['transfer-encoding'] = 'chunked';
      const req = http.request({ host: hostname, port: Number(port), method: request.method, path: request.path, headers, agent: false });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      });
      const body = request.body;
      if (body && request.chunked) {
        const half = Math.floor(body.length / 2);
        req.write(body.subarray(0, half));
        req.end(body.subarray(half));
      } else {
        req.end(body);
      }
    });
  };
}
export type RawClient = ReturnType<typeof rawClient>;

/**
 * The property every answer must have: a success, or a 4xx whose body is exactly the error shape
 * of the API ({"error": {"code", "message", "details": [{"field", "message"}]}}), each as
 * openapi.json documents it. Returns a reason when it is not, so the caller can fail with the
 * request attached.
 */
export function problemWithAnswer(request: RawRequest, response: RawResponse): string | undefined {
  const { status } = response;
  if (status >= 500) return `server error ${status}: ${response.text.slice(0, 500)}`;
  if (status < 200 || (status >= 300 && status < 400)) return `unexpected status ${status}`;
  if (request.method === 'HEAD' || status === 204) return undefined;
  const type = response.headers['content-type'] ?? '';
  if (!type.startsWith('application/json')) return `status ${status} with content-type "${type}": ${response.text.slice(0, 200)}`;
  let body: unknown;
  try {
    body = JSON.parse(response.text);
  } catch {
    return `status ${status} with a body that is not JSON: ${response.text.slice(0, 200)}`;
  }
  // A success as its operation documents it; an error in the API's error shape, with a status
  // its operation (or, for no route, the middleware) documents.
  return responseProblem({ method: request.method, url: request.path, status, contentType: type, body });
}
