import { expect } from 'vitest';
import { ADMIN_TOKEN } from './dispatch.js';
import type { ApiClient } from './http.js';

export type Grant = readonly [agent: string, role: string, scopes?: readonly string[]];

/**
 * Issues one credential per grant with the bootstrap admin token (token-mode test files' setup)
 * and returns each agent's token, shown once by Dispatch.
 */
export async function issueTokens(api: ApiClient, grants: readonly Grant[]): Promise<Record<string, string>> {
  const tokens: Record<string, string> = {};
  for (const [agent, role, scopes] of grants) {
    const body = scopes === undefined ? { role } : { role, scopes };
    const issued = await api('POST', `/api/v1/agents/${agent}/credentials`, { agent: null, token: ADMIN_TOKEN, body });
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    tokens[agent] = issued.body.token;
  }
  return tokens;
}
