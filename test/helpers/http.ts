import { ADMIN_TOKEN } from './dispatch.js';
import { assertDocumentedResponse } from './openapi-contract.js';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RequestOptions {
  agent?: string | null;
  admin?: boolean;
  token?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

/**
 * A small client for tests: JSON in, parsed JSON out, X-Agent-ID by default. Every answer is
 * checked against openapi.json (openapi-contract.ts): one that is not documented fails the test.
 */
export function apiClient(baseUrl: string, defaultAgent = 'agent-test') {
  return async function request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
    const agent = options.agent === undefined ? defaultAgent : options.agent;
    if (agent !== null) headers['x-agent-id'] = agent;
    if (options.admin) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // Non-JSON bodies (metrics) are returned as text.
    }
    assertDocumentedResponse({ method, url: path, status: response.status, contentType: response.headers.get('content-type'), body: parsed });
    return { status: response.status, headers: response.headers, body: parsed as T };
  };
}
export type ApiClient = ReturnType<typeof apiClient>;
