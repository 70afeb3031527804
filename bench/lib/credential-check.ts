import { Hono } from 'hono';
import { CredentialVerifier } from '../../src/auth/credentials.service.js';
import { openDatabase } from '../../src/db/database.js';
import type { ApiEnv } from '../../src/http/context.js';
import { identifyCaller, type AuthMode } from '../../src/http/middleware.js';

const CALLS = 20_000;
const ROUNDS = 5;

/**
 * What identifying the caller costs per call, in this process with nothing else on the path: the
 * API's own middleware in front of an empty route, called as a v1 client calls header mode
 * (X-Agent-ID) and as a token-mode client calls (a bearer credential, verified against
 * dispatch_credentials through the replica's cache). Alternating rounds; the median per mode.
 */
export async function credentialCheckCostUs(databaseUrl: string, agent: string, token: string, adminToken: string): Promise<Record<AuthMode, number>> {
  const handle = openDatabase(databaseUrl, 2, 'bench-credential-check');
  try {
    const verifier = new CredentialVerifier(handle.db);
    const route = (mode: AuthMode) =>
      new Hono<ApiEnv>().use('*', identifyCaller({ mode, adminToken, verify: (presented) => verifier.verify(presented) })).post('/tasks', (c) => c.body(null, 204));
    const calls: Record<AuthMode, { app: Hono<ApiEnv>; headers: Record<string, string> }> = {
      header: { app: route('header'), headers: { 'x-agent-id': agent } },
      token: { app: route('token'), headers: { authorization: `Bearer ${token}` } },
    };
    const perCall: Record<AuthMode, number[]> = { header: [], token: [] };
    for (let round = 0; round <= ROUNDS; round++) {
      for (const mode of ['header', 'token'] as const) {
        const { app, headers } = calls[mode];
        const started = performance.now();
        for (let i = 0; i < CALLS; i++) {
          const response = await app.request('/tasks', { method: 'POST', headers });
          if (response.status !== 204) throw new Error(`${mode} mode call answered ${response.status}`);
        }
        // Round 0 warms the JIT and the credential cache.
        if (round > 0) perCall[mode].push(((performance.now() - started) * 1_000) / CALLS);
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    return { header: median(perCall.header), token: median(perCall.token) };
  } finally {
    await handle.close();
  }
}
