import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { backoffDelayMs, createJsonHttpClient, IntegrationError, type IntegrationClientOptions } from '../../src/integrations/http-client.js';
import { createMetrics } from '../../src/observability/metrics.js';

const policy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 };

describe('backoffDelayMs', () => {
  it('doubles from the base, capped, with up to half of it random', () => {
    expect(backoffDelayMs(0, policy, () => 0)).toBe(50);
    expect(backoffDelayMs(0, policy, () => 1)).toBe(100);
    expect(backoffDelayMs(1, policy, () => 0)).toBe(100);
    expect(backoffDelayMs(2, policy, () => 1)).toBe(400);
    expect(backoffDelayMs(10, policy, () => 1)).toBe(1_000);
    expect(backoffDelayMs(10, policy, () => 0)).toBe(500);
  });

  it('stays within [ceiling/2, ceiling] for any random value', () => {
    for (let retry = 0; retry < 8; retry++) {
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
      for (const r of [0, 0.1, 0.5, 0.99, 1]) {
        const delay = backoffDelayMs(retry, policy, () => r);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });
});

type Step = { status: number; body: string } | Error;

/** A fetch that answers from a script and records what it was asked. */
function scriptedFetch(steps: Step[]) {
  const requests: { url: string; headers: Record<string, string> }[] = [];
  const fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    requests.push({ url: String(url), headers: { ...(init?.headers as Record<string, string>) } });
    const step = steps.shift();
    if (!step) throw new Error('script exhausted');
    if (step instanceof Error) throw step;
    return new Response(step.body, { status: step.status });
  }) as typeof globalThis.fetch;
  return { fetch, requests };
}

function client(steps: Step[], overrides: Partial<IntegrationClientOptions> = {}) {
  const scripted = scriptedFetch(steps);
  const sleeps: number[] = [];
  const metrics = createMetrics();
  const http = createJsonHttpClient('warren', {
    baseUrl: 'http://warren.invalid:9090/',
    token: 's3cret-token',
    timeoutMs: 1_000,
    fetch: scripted.fetch,
    sleep: async (ms) => void sleeps.push(ms),
    random: () => 0.5,
    metrics,
    ...overrides,
  });
  return { http, sleeps, metrics, requests: scripted.requests };
}

const schema = z.object({ ok: z.boolean() });
const networkError = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });

async function failureOf(promise: Promise<unknown>): Promise<IntegrationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IntegrationError);
  return error as IntegrationError;
}

describe('createJsonHttpClient', () => {
  it('sends the bearer token and joins the URL', async () => {
    const { http, requests } = client([{ status: 200, body: '{"ok":true}' }]);
    await expect(http.request({ method: 'GET', path: '/admin/agents', schema })).resolves.toEqual({ ok: true });
    expect(requests[0]).toMatchObject({ url: 'http://warren.invalid:9090/admin/agents', headers: { authorization: 'Bearer s3cret-token' } });
  });

  it('sends no Authorization header without a token', async () => {
    const { http, requests } = client([{ status: 200, body: '{"ok":true}' }], { token: '' });
    await http.request({ method: 'GET', path: '/x', schema });
    expect(requests[0]?.headers.authorization).toBeUndefined();
  });

  it('retries 5xx and network errors with backoff, then succeeds', async () => {
    const { http, sleeps, requests, metrics } = client([networkError, { status: 503, body: '' }, { status: 200, body: '{"ok":true}' }]);
    await expect(http.request({ method: 'GET', path: '/x', schema })).resolves.toEqual({ ok: true });
    expect(requests).toHaveLength(3);
    expect(sleeps).toEqual([75, 150]);
    expect((await metrics.integrationUp.get()).values).toEqual([expect.objectContaining({ value: 1, labels: { service: 'warren' } })]);
  });

  it('gives up after the configured attempts with the last reason', async () => {
    const { http, requests, metrics } = client([networkError, networkError, { status: 500, body: 'oops' }]);
    const error = await failureOf(http.request({ method: 'GET', path: '/x', schema }));
    expect(error).toMatchObject({ service: 'warren', reason: 'server_error', status: 500 });
    expect(requests).toHaveLength(3);
    expect((await metrics.integrationUp.get()).values[0]?.value).toBe(0);
    expect((await metrics.integrationErrors.get()).values).toEqual([
      expect.objectContaining({ value: 1, labels: { service: 'warren', reason: 'server_error' } }),
    ]);
  });

  it('names the errno of a network failure', async () => {
    const { http } = client([networkError], { retry: { attempts: 1 } });
    const error = await failureOf(http.request({ method: 'GET', path: '/x', schema }));
    expect(error.reason).toBe('network');
    expect(error.message).toContain('ECONNREFUSED');
  });

  it.each([
    ['a 4xx', { status: 401, body: '{}' }, 'client_error'],
    ['a body that is not JSON', { status: 200, body: '<html>' }, 'invalid_response'],
    ['JSON of the wrong shape', { status: 200, body: '{"ok":"yes"}' }, 'invalid_response'],
  ] as const)('does not retry %s', async (_label, step, reason) => {
    const { http, requests, metrics } = client([step, { status: 200, body: '{"ok":true}' }]);
    const error = await failureOf(http.request({ method: 'GET', path: '/x', schema }));
    expect(error.reason).toBe(reason);
    expect(requests).toHaveLength(1);
    // A 4xx means the service answered: it is up.
    expect((await metrics.integrationUp.get()).values[0]?.value).toBe(reason === 'client_error' ? 1 : 0);
  });

  it('answers null for the statuses the caller expects', async () => {
    const { http } = client([{ status: 404, body: '{}' }]);
    await expect(http.request({ method: 'GET', path: '/x', schema, nullOn: [404] })).resolves.toBeNull();
  });

  it('accepts an empty or non-JSON answer only when the answer is optional', async () => {
    const { http } = client([
      { status: 202, body: '' },
      { status: 200, body: 'accepted' },
    ]);
    await expect(http.request({ method: 'POST', path: '/w', schema: z.unknown(), answerOptional: true })).resolves.toBeNull();
    await expect(http.request({ method: 'POST', path: '/w', schema: z.unknown(), answerOptional: true })).resolves.toBeNull();
  });

  it('never puts the token in an error', async () => {
    const { http } = client([{ status: 500, body: 's3cret-token' }], { retry: { attempts: 1 } });
    const error = await failureOf(http.request({ method: 'GET', path: '/x', schema }));
    expect(JSON.stringify({ message: error.message, stack: error.stack })).not.toContain('s3cret-token');
  });

  it('does not retry once the caller aborts, and records no error', async () => {
    const controller = new AbortController();
    const abortError = new DOMException('aborted', 'AbortError');
    const { http, requests, metrics } = client([abortError, { status: 200, body: '{"ok":true}' }]);
    controller.abort();
    const error = await failureOf(http.request({ method: 'GET', path: '/x', schema, signal: controller.signal }));
    expect(error.reason).toBe('aborted');
    expect(requests).toHaveLength(1);
    expect((await metrics.integrationErrors.get()).values).toEqual([]);
  });
});
