import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IntegrationError } from '../../src/integrations/http-client.js';
import { createPromptForgeClient } from '../../src/integrations/promptforge/promptforge.client.js';
import { createWarrenClient } from '../../src/integrations/warren/warren.client.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { FakePromptForge } from '../helpers/fake-promptforge.js';
import { FakeWarren } from '../helpers/fake-warren.js';

const WARREN_TOKEN = 'warren-token-9c2e';
const FORGE_TOKEN = 'forge-token-41ab';
// Long enough for an answer from a loaded machine (a timeout there retries, and the tests count
// calls); the tests of hanging services wait HANG_TIMEOUT_MS per attempt instead, to stay quick.
// Retries back off by only a few ms.
const TIMEOUT_MS = 2_000;
const HANG_TIMEOUT_MS = 150;
const RETRY = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

let warren: FakeWarren;
let forge: FakePromptForge;

beforeAll(async () => {
  warren = await FakeWarren.start({
    token: WARREN_TOKEN,
    wakeDelayMs: 30,
    agents: [
      { name: 'alpha', status: 'ready' },
      { name: 'beta', status: 'sleeping' },
      { name: 'gamma', status: 'starting' },
      { name: 'delta', status: 'rebooting' },
    ],
  });
  forge = await FakePromptForge.start({
    token: FORGE_TOKEN,
    personas: [
      { name: 'alpha', capabilities: ['Code-Review', ' Go '], maxConcurrent: 5 },
      { name: 'beta', capabilities: 'docs,, ,Testing' },
    ],
  });
});
afterAll(async () => {
  await warren?.close();
  await forge?.close();
});
afterEach(() => {
  warren.recover();
  forge.recover();
  warren.resetCalls();
  forge.resetCalls();
});

function warrenClient(token = WARREN_TOKEN, metrics = createMetrics(), timeoutMs = TIMEOUT_MS) {
  return createWarrenClient({ baseUrl: warren.url, token, timeoutMs, retry: RETRY, metrics });
}
function forgeClient(token = FORGE_TOKEN, metrics = createMetrics(), timeoutMs = TIMEOUT_MS) {
  return createPromptForgeClient({ baseUrl: forge.url, token, timeoutMs, retry: RETRY, metrics });
}

async function failureOf(promise: Promise<unknown>): Promise<IntegrationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IntegrationError);
  return error as IntegrationError;
}

describe('Warren client', () => {
  it('lists agents in one call with the bearer token, mapping statuses', async () => {
    const agents = await warrenClient().listAgents();
    expect(agents).toEqual([
      { name: 'alpha', status: 'ready' },
      { name: 'beta', status: 'sleeping' },
      { name: 'gamma', status: 'starting' },
      { name: 'delta', status: 'unknown' },
    ]);
    expect(warren.calls).toEqual([{ method: 'GET', path: '/admin/agents', authorization: `Bearer ${WARREN_TOKEN}` }]);
  });

  it('reads one agent, and null for one Warren does not know', async () => {
    const client = warrenClient();
    await expect(client.getAgent('alpha')).resolves.toEqual({ name: 'alpha', status: 'ready' });
    await expect(client.getAgent('nobody')).resolves.toBeNull();
    expect(warren.calls.map((call) => call.path)).toEqual(['/admin/agents/alpha', '/admin/agents/nobody']);
  });

  it('encodes agent names in paths', async () => {
    warren.setStatus('odd name/1', 'busy');
    await expect(warrenClient().getAgent('odd name/1')).resolves.toEqual({ name: 'odd name/1', status: 'busy' });
    expect(warren.calls[0]?.path).toBe('/admin/agents/odd%20name%2F1');
    warren.remove('odd name/1');
  });

  it('wakes a sleeping agent: starting at once, ready after the delay', async () => {
    const ready = warren.waitForStatus('beta', 'ready');
    await expect(warrenClient().wakeAgent('beta')).resolves.toEqual({ name: 'beta', status: 'starting' });
    expect(warren.status('beta')).toBe('starting');
    expect(warren.wakes).toEqual(['beta']);
    await ready;
    warren.sleep('beta');
  });

  it('fails a wake for an agent Warren does not know with a client error', async () => {
    const error = await failureOf(warrenClient().wakeAgent('nobody'));
    expect(error).toMatchObject({ service: 'warren', reason: 'client_error', status: 404 });
  });

  it('is refused without the right token, and says so', async () => {
    const error = await failureOf(warrenClient('wrong').listAgents());
    expect(error).toMatchObject({ reason: 'client_error', status: 401 });
    expect(error.message).not.toContain('wrong');
    expect(warren.calls).toHaveLength(1);
  });

  it('retries 5xx and then succeeds', async () => {
    warren.failWith('error', 2);
    const metrics = createMetrics();
    await expect(warrenClient(WARREN_TOKEN, metrics).listAgents()).resolves.toHaveLength(4);
    expect(warren.callsTo('GET', '/admin/agents')).toHaveLength(3);
    expect((await metrics.integrationUp.get()).values[0]?.value).toBe(1);
  });

  it('gives up after three tries of 5xx', async () => {
    warren.failWith('error');
    const metrics = createMetrics();
    const error = await failureOf(warrenClient(WARREN_TOKEN, metrics).listAgents());
    expect(error).toMatchObject({ reason: 'server_error', status: 500 });
    expect(warren.calls).toHaveLength(3);
    expect((await metrics.integrationUp.get()).values[0]?.value).toBe(0);
    expect((await metrics.integrationErrors.get()).values).toEqual([
      expect.objectContaining({ labels: { service: 'warren', reason: 'server_error' }, value: 1 }),
    ]);
  });

  it('times out a hanging Warren per attempt, retries, and fails within the bound', async () => {
    warren.failWith('hang');
    const started = performance.now();
    const error = await failureOf(warrenClient(WARREN_TOKEN, createMetrics(), HANG_TIMEOUT_MS).listAgents());
    const elapsed = performance.now() - started;
    expect(error.reason).toBe('timeout');
    expect(warren.calls).toHaveLength(3);
    // Three timeouts plus two short backoffs; generous upper bound for a loaded machine.
    expect(elapsed).toBeGreaterThanOrEqual(3 * HANG_TIMEOUT_MS - 10);
    expect(elapsed).toBeLessThan(3 * HANG_TIMEOUT_MS + 1_000);
  });

  it('recovers after a hang once Warren answers again', async () => {
    warren.failWith('hang', 1);
    await expect(warrenClient(WARREN_TOKEN, createMetrics(), 1_000).listAgents()).resolves.toHaveLength(4);
    expect(warren.calls).toHaveLength(2);
  });

  it.each(['garbage', 'malformed'] as const)('turns a %s answer into a typed error without retrying', async (mode) => {
    warren.failWith(mode);
    const error = await failureOf(warrenClient().listAgents());
    expect(error).toMatchObject({ service: 'warren', reason: 'invalid_response' });
    expect(warren.calls).toHaveLength(1);
  });

  it('reports a refused connection as a network error', async () => {
    const closed = await FakeWarren.start();
    const url = closed.url;
    await closed.close();
    const client = createWarrenClient({ baseUrl: url, timeoutMs: TIMEOUT_MS, retry: RETRY });
    const error = await failureOf(client.listAgents());
    expect(error.reason).toBe('network');
  });

  it('stops at once when the caller aborts a hanging call', async () => {
    warren.failWith('hang');
    const controller = new AbortController();
    const client = createWarrenClient({ baseUrl: warren.url, token: WARREN_TOKEN, timeoutMs: 5_000, retry: RETRY });
    const pending = failureOf(client.listAgents(controller.signal));
    await new Promise<void>((resolve) => warren.once('request', () => resolve()));
    controller.abort();
    const error = await pending;
    expect(error.reason).toBe('aborted');
    expect(warren.calls).toHaveLength(1);
  });
});

describe('PromptForge client', () => {
  it('lists personas with their capabilities and limits, sending the token', async () => {
    const personas = await forgeClient().listPersonas();
    expect(personas).toEqual([
      { id: 'persona-1', name: 'alpha', capabilities: ['code-review', 'go'], maxConcurrent: 5 },
      { id: 'persona-2', name: 'beta', capabilities: ['docs', 'testing'], maxConcurrent: null },
    ]);
    expect(forge.calls).toEqual([{ method: 'GET', path: '/api/v1/personas', authorization: `Bearer ${FORGE_TOKEN}` }]);
  });

  it('retries a 5xx and then succeeds', async () => {
    forge.failWith('error', 1);
    await expect(forgeClient().listPersonas()).resolves.toHaveLength(2);
    expect(forge.calls).toHaveLength(2);
  });

  it.each(['garbage', 'malformed'] as const)('turns a %s answer into a typed error', async (mode) => {
    forge.failWith(mode);
    const error = await failureOf(forgeClient().listPersonas());
    expect(error).toMatchObject({ service: 'promptforge', reason: 'invalid_response' });
  });

  it('times out when PromptForge hangs', async () => {
    forge.failWith('hang');
    const error = await failureOf(forgeClient(FORGE_TOKEN, createMetrics(), HANG_TIMEOUT_MS).listPersonas());
    expect(error.reason).toBe('timeout');
    expect(forge.calls).toHaveLength(3);
  });

  it('is refused without the token', async () => {
    const error = await failureOf(forgeClient('').listPersonas());
    expect(error).toMatchObject({ reason: 'client_error', status: 401 });
    expect(forge.calls[0]?.authorization).toBeUndefined();
  });
});
