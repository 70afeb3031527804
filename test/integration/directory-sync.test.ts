import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { applyAgentStatus, createDirectorySync, DirectorySync, type DirectorySyncOptions } from '../../src/agents/directory-sync.js';
import { parseConfig } from '../../src/config/load.js';
import type { AgentRow } from '../../src/db/database.js';
import { createPromptForgeClient } from '../../src/integrations/promptforge/promptforge.client.js';
import { createWarrenClient } from '../../src/integrations/warren/warren.client.js';
import { captureLogs } from '../helpers/logs.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { openDatabase } from '../../src/db/database.js';
import { createTestDatabase, databaseUrl, type TestDatabase } from '../helpers/database.js';
import { FakePromptForge } from '../helpers/fake-promptforge.js';
import { FakeWarren, type FailureMode } from '../helpers/fake-warren.js';
import { waitFor } from '../helpers/wait.js';

const WARREN_TOKEN = 'warren-secret-7d1f0e';
const FORGE_TOKEN = 'forge-secret-b83a52';
const STATE_TTL_MS = 1_000;
const PERSONA_TTL_MS = 30_000;
const GRACE_MS = 3 * STATE_TTL_MS;
const RETRY = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

let database: TestDatabase;
let warren: FakeWarren;
let forge: FakePromptForge;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});
beforeEach(async () => {
  warren = await FakeWarren.start({
    token: WARREN_TOKEN,
    agents: [
      { name: 'alpha', status: 'ready' },
      { name: 'beta', status: 'sleeping' },
      // Warren runs it but PromptForge has no persona: not part of the directory.
      { name: 'orphan', status: 'ready' },
    ],
  });
  forge = await FakePromptForge.start({
    token: FORGE_TOKEN,
    personas: [
      { name: 'alpha', capabilities: 'Code-Review, go', maxConcurrent: 5 },
      { name: 'beta', capabilities: ['docs'] },
      // A persona Warren does not list: known, but of unknown state.
      { name: 'gamma', capabilities: ['docs', 'go'] },
    ],
  });
});
afterEach(async () => {
  await warren?.close();
  await forge?.close();
  await sql`DELETE FROM dispatch_tasks`.execute(database.handle.db);
  await sql`DELETE FROM dispatch_agents`.execute(database.handle.db);
});

interface Harness {
  sync: DirectorySync;
  metrics: Metrics;
  logs: ReturnType<typeof captureLogs>;
  clock: { now: number };
}

const running: DirectorySync[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((sync) => sync.stop()));
});

function harness(overrides: Partial<DirectorySyncOptions> & { timeoutMs?: number; warrenToken?: string } = {}): Harness {
  const metrics = createMetrics();
  const logs = captureLogs();
  const clock = { now: Date.now() };
  const timeoutMs = overrides.timeoutMs ?? 200;
  const sync = new DirectorySync({
    db: database.handle.db,
    warren: createWarrenClient({ baseUrl: warren.url, token: overrides.warrenToken ?? WARREN_TOKEN, timeoutMs, retry: RETRY, metrics }),
    promptforge: createPromptForgeClient({ baseUrl: forge.url, token: FORGE_TOKEN, timeoutMs, retry: RETRY, metrics }),
    logger: logs.logger,
    stateTtlMs: STATE_TTL_MS,
    personaTtlMs: PERSONA_TTL_MS,
    now: () => clock.now,
    ...overrides,
  });
  running.push(sync);
  return { sync, metrics, logs, clock };
}

async function agents(): Promise<Record<string, AgentRow>> {
  const rows = await database.handle.db.selectFrom('dispatch_agents').selectAll().orderBy('name').execute();
  return Object.fromEntries(rows.map((row) => [row.name, row]));
}

async function statuses(): Promise<Record<string, string>> {
  return Object.fromEntries(Object.values(await agents()).map((row) => [row.name, row.status]));
}

/** Row versions: xmin changes whenever PostgreSQL writes a new version of the row. */
async function rowVersions(): Promise<Record<string, string>> {
  const result = await sql<{ name: string; xmin: string }>`SELECT name, xmin::text AS xmin FROM dispatch_agents`.execute(database.handle.db);
  return Object.fromEntries(result.rows.map((row) => [row.name, row.xmin]));
}

async function gauge(metrics: Metrics, service: string): Promise<number | undefined> {
  return (await metrics.integrationUp.get()).values.find((v) => v.labels.service === service)?.value;
}

async function errorCount(metrics: Metrics, service: string): Promise<number> {
  return (await metrics.integrationErrors.get()).values.filter((v) => v.labels.service === service).reduce((sum, v) => sum + v.value, 0);
}

async function insertAssignedTask(assignee: string): Promise<void> {
  await database.handle.db
    .insertInto('dispatch_tasks')
    .values({ requester: 'req', title: 'held', scope: 'go', status: 'assigned', assignee, assigned_at: new Date() })
    .execute();
}

describe('directory sync', () => {
  it('fills dispatch_agents from PromptForge personas and Warren states', async () => {
    const { sync } = harness();
    const result = await sync.runOnce();
    expect(result).toMatchObject({ personas: 'fresh', warren: 'fresh' });
    expect(result.changes).toEqual([
      { name: 'alpha', status: 'ready', previousStatus: null, profileChanged: true },
      { name: 'beta', status: 'sleeping', previousStatus: null, profileChanged: true },
      { name: 'gamma', status: 'unknown', previousStatus: null, profileChanged: true },
    ]);
    const rows = await agents();
    expect(Object.keys(rows)).toEqual(['alpha', 'beta', 'gamma']);
    expect(rows.alpha).toMatchObject({
      capabilities: ['code-review', 'go'],
      max_concurrent: 5,
      status: 'ready',
      source: 'warren',
      drained: false,
      active_tasks: 0,
    });
    expect(rows.alpha?.last_seen_at).toBeInstanceOf(Date);
    expect(rows.beta).toMatchObject({ capabilities: ['docs'], max_concurrent: null, status: 'sleeping' });
    // Not listed by Warren: unknown, never seen.
    expect(rows.gamma).toMatchObject({ capabilities: ['docs', 'go'], status: 'unknown', last_seen_at: null });
  });

  it('writes no row when nothing changed', async () => {
    const { sync, clock } = harness();
    await sync.runOnce();
    const before = await rowVersions();
    clock.now += STATE_TTL_MS;
    const result = await sync.runOnce();
    expect(result.changes).toEqual([]);
    // Persona list re-read too (TTL passed) and still nothing written.
    clock.now += PERSONA_TTL_MS;
    expect(await sync.runOnce()).toMatchObject({ personas: 'fresh', changes: [] });
    expect(await rowVersions()).toEqual(before);
  });

  it('refreshes last_seen_at of the agents Warren lists only once it is older than seenRefreshMs', async () => {
    const { sync } = harness({ seenRefreshMs: 0 });
    await sync.runOnce();
    const before = await agents();
    const versions = await rowVersions();
    expect((await sync.runOnce()).changes).toEqual([]);
    const after = await agents();
    const afterVersions = await rowVersions();
    expect(after.alpha!.last_seen_at!.getTime()).toBeGreaterThan(before.alpha!.last_seen_at!.getTime());
    expect(afterVersions.alpha).not.toBe(versions.alpha);
    // gamma is not listed by Warren: never seen, never rewritten.
    expect(afterVersions.gamma).toBe(versions.gamma);
  });

  it('propagates Warren status changes, with unknown words as unknown and starting kept', async () => {
    const { sync, clock } = harness();
    await sync.runOnce();
    warren.degrade('alpha');
    warren.setStatus('beta', 'starting');
    warren.setStatus('gamma', 'hibernating');
    clock.now += STATE_TTL_MS;
    const result = await sync.runOnce();
    expect(result.changes).toEqual([
      { name: 'alpha', status: 'degraded', previousStatus: 'ready', profileChanged: false },
      { name: 'beta', status: 'starting', previousStatus: 'sleeping', profileChanged: false },
    ]);
    expect(await statuses()).toEqual({ alpha: 'degraded', beta: 'starting', gamma: 'unknown' });
    // gamma's status word is unknown, but Warren did list it: it has been seen.
    expect((await agents()).gamma?.last_seen_at).toBeInstanceOf(Date);

    warren.stop('alpha');
    warren.ready('beta');
    warren.setStatus('gamma', 'busy');
    clock.now += STATE_TTL_MS;
    await sync.runOnce();
    expect(await statuses()).toEqual({ alpha: 'stopped', beta: 'ready', gamma: 'busy' });

    warren.remove('gamma');
    clock.now += STATE_TTL_MS;
    await sync.runOnce();
    expect((await statuses()).gamma).toBe('unknown');
  });

  it('reads personas once per TTL and applies their changes without touching drain or load', async () => {
    const { sync, clock } = harness();
    await sync.runOnce();
    await database.handle.db.updateTable('dispatch_agents').set({ drained: true, drained_by: 'ops' }).where('name', '=', 'alpha').execute();
    await insertAssignedTask('alpha');
    expect((await agents()).alpha?.active_tasks).toBe(1);

    forge.setPersona({ name: 'alpha', capabilities: 'rust, GO', maxConcurrent: 2 });
    clock.now += STATE_TTL_MS;
    await sync.runOnce();
    // Still within the persona TTL: the old capabilities stand.
    expect((await agents()).alpha?.capabilities).toEqual(['code-review', 'go']);
    expect(forge.calls).toHaveLength(1);

    clock.now += PERSONA_TTL_MS;
    const result = await sync.runOnce();
    expect(result.changes).toEqual([{ name: 'alpha', status: 'ready', previousStatus: 'ready', profileChanged: true }]);
    expect(forge.calls).toHaveLength(2);
    expect((await agents()).alpha).toMatchObject({
      capabilities: ['go', 'rust'],
      max_concurrent: 2,
      drained: true,
      drained_by: 'ops',
      active_tasks: 1,
    });

    // Dropping the limit section returns the agent to the configured default.
    forge.setPersona({ name: 'alpha', capabilities: 'rust, go' });
    sync.invalidatePersonas();
    await sync.runOnce();
    expect((await agents()).alpha?.max_concurrent).toBeNull();
  });

  it('keeps a persona that disappears as unknown with no capabilities, and restores it when it returns', async () => {
    const { sync } = harness();
    await sync.runOnce();
    await insertAssignedTask('beta');
    forge.removePersona('beta');
    sync.invalidatePersonas();
    const result = await sync.runOnce();
    expect(result.changes).toEqual([{ name: 'beta', status: 'unknown', previousStatus: 'sleeping', profileChanged: true }]);
    expect((await agents()).beta).toMatchObject({ status: 'unknown', capabilities: [], active_tasks: 1, source: 'warren' });

    // Still gone: nothing more to write, even though Warren keeps listing it.
    expect((await sync.runOnce()).changes).toEqual([]);

    forge.setPersona({ name: 'beta', capabilities: ['docs'] });
    sync.invalidatePersonas();
    await sync.runOnce();
    expect((await agents()).beta).toMatchObject({ status: 'sleeping', capabilities: ['docs'] });
  });

  it('leaves standalone agents alone, but takes over one PromptForge also lists', async () => {
    await database.handle.db
      .insertInto('dispatch_agents')
      .values([
        { name: 'solo', capabilities: ['docs'], status: 'ready', source: 'standalone' },
        { name: 'alpha', capabilities: ['old'], status: 'busy', source: 'standalone' },
      ])
      .execute();
    const { sync } = harness();
    await sync.runOnce();
    const rows = await agents();
    expect(rows.solo).toMatchObject({ status: 'ready', source: 'standalone', capabilities: ['docs'] });
    expect(rows.alpha).toMatchObject({ status: 'ready', source: 'warren', capabilities: ['code-review', 'go'] });
  });

  it('makes one Warren call per sync and one PromptForge call per TTL, however many tasks wait', async () => {
    const { sync, clock } = harness();
    await database.handle.db
      .insertInto('dispatch_tasks')
      .values(Array.from({ length: 500 }, (_, i) => ({ requester: 'req', title: `t${i}`, scope: i % 2 ? 'go' : 'docs' })))
      .execute();
    for (let i = 0; i < 10; i++) {
      await sync.runOnce();
      clock.now += STATE_TTL_MS;
    }
    expect(warren.calls).toHaveLength(10);
    expect(warren.calls.every((call) => call.method === 'GET' && call.path === '/admin/agents')).toBe(true);
    expect(forge.calls).toHaveLength(1);
  });

  it('shares one sync between concurrent callers', async () => {
    const { sync } = harness();
    const [a, b] = await Promise.all([sync.runOnce(), sync.runOnce()]);
    expect(a).toBe(b);
    expect(warren.calls).toHaveLength(1);
  });

  it('tells the change handler what changed, after commit', async () => {
    const seen: string[][] = [];
    const { sync, clock } = harness({
      onChange: async (changes) => {
        // The rows are already visible to another connection.
        const committed = await statuses();
        seen.push(changes.map((change) => `${change.name}:${change.status}:${committed[change.name]}`));
      },
    });
    await sync.runOnce();
    warren.sleep('alpha');
    clock.now += STATE_TTL_MS;
    await sync.runOnce();
    await sync.runOnce();
    expect(seen).toEqual([['alpha:ready:ready', 'beta:sleeping:sleeping', 'gamma:unknown:unknown'], ['alpha:sleeping:sleeping']]);
  });
});

describe('when Warren is down', () => {
  it.each<FailureMode>(['error', 'garbage', 'hang'])(
    '(%s) keeps statuses through the grace window, then marks agents unknown, then recovers',
    async (mode) => {
      const { sync, clock, logs, metrics } = harness();
      await sync.runOnce();
      expect(await gauge(metrics, 'warren')).toBe(1);

      warren.failWith(mode);
      clock.now += STATE_TTL_MS;
      expect(await sync.runOnce()).toMatchObject({ warren: 'kept', changes: [] });
      expect(await statuses()).toEqual({ alpha: 'ready', beta: 'sleeping', gamma: 'unknown' });
      expect(await gauge(metrics, 'warren')).toBe(0);
      clock.now += STATE_TTL_MS;
      expect(await sync.runOnce()).toMatchObject({ warren: 'kept' });

      clock.now += GRACE_MS;
      const expired = await sync.runOnce();
      expect(expired.warren).toBe('expired');
      expect(await statuses()).toEqual({ alpha: 'unknown', beta: 'unknown', gamma: 'unknown' });
      // Capabilities survive: only the state is in doubt.
      expect((await agents()).alpha?.capabilities).toEqual(['code-review', 'go']);
      clock.now += STATE_TTL_MS;
      expect(await sync.runOnce()).toMatchObject({ warren: 'expired', changes: [] });

      const warnings = logs.at('warn').filter((line) => line.service === 'warren');
      expect(warnings).toHaveLength(2);
      expect(warnings[0]).toMatchObject({ reason: mode === 'error' ? 'server_error' : mode === 'hang' ? 'timeout' : 'invalid_response' });
      expect(String(warnings[1]?.msg)).toContain('grace');
      expect(await errorCount(metrics, 'warren')).toBe(4);

      warren.recover();
      clock.now += STATE_TTL_MS;
      expect(await sync.runOnce()).toMatchObject({ warren: 'fresh' });
      expect(await statuses()).toEqual({ alpha: 'ready', beta: 'sleeping', gamma: 'unknown' });
      expect(await gauge(metrics, 'warren')).toBe(1);
      expect(logs.at('info').filter((line) => line.service === 'warren' && line.msg === 'warren recovered')).toHaveLength(1);
      // A second outage is reported again.
      warren.failWith('error');
      clock.now += STATE_TTL_MS;
      await sync.runOnce();
      expect(logs.at('warn').filter((line) => line.service === 'warren')).toHaveLength(3);
    },
  );

  it('counts the grace window from start-up when Warren never answered', async () => {
    await database.handle.db
      .insertInto('dispatch_agents')
      .values({ name: 'alpha', capabilities: ['go'], status: 'ready', source: 'warren' })
      .execute();
    warren.failWith('error');
    const { sync, clock } = harness();
    expect(await sync.runOnce()).toMatchObject({ warren: 'kept' });
    // A persona that is new to the table starts unknown; the known one keeps its status for now.
    expect(await statuses()).toEqual({ alpha: 'ready', beta: 'unknown', gamma: 'unknown' });
    clock.now += GRACE_MS + 1;
    expect(await sync.runOnce()).toMatchObject({ warren: 'expired' });
    expect((await statuses()).alpha).toBe('unknown');
  });

  it('rejected for a wrong token: logged once, no token in the log', async () => {
    const { sync, clock, logs } = harness({ warrenToken: 'not-the-token-5521' });
    await sync.runOnce();
    clock.now += STATE_TTL_MS;
    await sync.runOnce();
    const warnings = logs.at('warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ service: 'warren', reason: 'client_error' });
    expect(logs.raw()).not.toContain('not-the-token-5521');
  });
});

describe('when PromptForge is down', () => {
  it.each<FailureMode>(['error', 'garbage', 'malformed', 'hang'])(
    '(%s) keeps the last known personas, still follows Warren, and recovers',
    async (mode) => {
      const { sync, clock, logs, metrics } = harness();
      await sync.runOnce();
      forge.failWith(mode);
      forge.setPersona({ name: 'alpha', capabilities: ['rust'] });
      warren.degrade('alpha');
      clock.now += PERSONA_TTL_MS;
      expect(await sync.runOnce()).toMatchObject({ personas: 'cached', warren: 'fresh' });
      expect((await agents()).alpha).toMatchObject({ capabilities: ['code-review', 'go'], status: 'degraded' });
      expect(await gauge(metrics, 'promptforge')).toBe(0);

      // Retried after one state interval, then backing off: not on every sync.
      const callsAfterFailure = forge.calls.length;
      await sync.runOnce();
      expect(forge.calls).toHaveLength(callsAfterFailure);
      clock.now += STATE_TTL_MS;
      await sync.runOnce();
      expect(forge.calls.length).toBeGreaterThan(callsAfterFailure);
      expect(logs.at('warn').filter((line) => line.service === 'promptforge')).toHaveLength(1);

      forge.recover();
      clock.now += PERSONA_TTL_MS;
      expect(await sync.runOnce()).toMatchObject({ personas: 'fresh' });
      expect((await agents()).alpha?.capabilities).toEqual(['rust']);
      expect(await gauge(metrics, 'promptforge')).toBe(1);
      expect(logs.at('info').filter((line) => line.msg === 'promptforge recovered')).toHaveLength(1);
    },
  );

  it('down since start-up: follows Warren for the agents already in the table', async () => {
    await database.handle.db
      .insertInto('dispatch_agents')
      .values([
        { name: 'alpha', capabilities: ['go'], status: 'ready', source: 'warren' },
        { name: 'ghost', capabilities: ['go'], status: 'ready', source: 'warren' },
        { name: 'solo', capabilities: ['go'], status: 'ready', source: 'standalone' },
      ])
      .execute();
    forge.failWith('error');
    warren.setStatus('alpha', 'busy');
    const { sync } = harness();
    expect(await sync.runOnce()).toMatchObject({ personas: 'none', warren: 'fresh' });
    const rows = await agents();
    expect(Object.keys(rows)).toEqual(['alpha', 'ghost', 'solo']);
    expect(rows.alpha).toMatchObject({ status: 'busy', capabilities: ['go'] });
    expect(rows.ghost?.status).toBe('unknown');
    expect(rows.solo?.status).toBe('ready');
  });
});

describe('both down, then back', () => {
  it('assignment data comes back by itself, and no secret reaches the log', async () => {
    const { sync, clock, logs } = harness();
    await sync.runOnce();
    warren.failWith('garbage');
    forge.failWith('error');
    for (let i = 0; i < 6; i++) {
      clock.now += STATE_TTL_MS;
      await sync.runOnce();
    }
    expect(await statuses()).toEqual({ alpha: 'unknown', beta: 'unknown', gamma: 'unknown' });
    warren.recover();
    forge.recover();
    clock.now += PERSONA_TTL_MS;
    await sync.runOnce();
    expect(await statuses()).toEqual({ alpha: 'ready', beta: 'sleeping', gamma: 'unknown' });
    expect(logs.raw()).not.toContain(WARREN_TOKEN);
    expect(logs.raw()).not.toContain(FORGE_TOKEN);
    expect(logs.at('warn').length).toBeGreaterThan(0);
  });
});

describe('applyAgentStatus', () => {
  it('changes one agent at once and reports the previous status', async () => {
    const { sync } = harness();
    await sync.runOnce();
    const before = await agents();
    await expect(applyAgentStatus(database.handle.db, 'beta', 'ready')).resolves.toEqual({
      name: 'beta',
      status: 'ready',
      previousStatus: 'sleeping',
      profileChanged: false,
    });
    const after = await agents();
    expect(after.beta?.status).toBe('ready');
    expect(after.beta?.last_seen_at).toBeInstanceOf(Date);
    expect(after.alpha).toEqual(before.alpha);
  });

  it('does not create agents it does not know', async () => {
    await expect(applyAgentStatus(database.handle.db, 'nobody', 'ready')).resolves.toBeNull();
    expect(await agents()).toEqual({});
  });
});

describe('start and stop', () => {
  it('syncs on a timer until stopped', async () => {
    const logs = captureLogs();
    const sync = new DirectorySync({
      db: database.handle.db,
      warren: createWarrenClient({ baseUrl: warren.url, token: WARREN_TOKEN, timeoutMs: 500 }),
      promptforge: createPromptForgeClient({ baseUrl: forge.url, token: FORGE_TOKEN, timeoutMs: 500 }),
      logger: logs.logger,
      stateTtlMs: 20,
      personaTtlMs: PERSONA_TTL_MS,
    });
    running.push(sync);
    sync.start();
    await waitFor(async () => (await statuses()).alpha === 'ready', { what: 'first sync' });
    warren.degrade('alpha');
    await waitFor(async () => (await statuses()).alpha === 'degraded', { what: 'status change' });
    await sync.stop();
    const calls = warren.calls.length;
    warren.ready('alpha');
    // Stopped: a further Warren change is not picked up (checked over several would-be ticks, five
    // at 20 ms). The request stop() aborted may still reach the fake after it, so one more call
    // can be counted (seen once under a full `npm test`), never a tick's worth.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(warren.calls.length).toBeLessThanOrEqual(calls + 1);
    expect((await statuses()).alpha).toBe('degraded');
  });

  it('stops promptly while a call hangs, logging no outage', async () => {
    const { sync, logs } = harness({ timeoutMs: 10_000 });
    warren.failWith('hang');
    sync.start();
    await new Promise<void>((resolve) => warren.once('request', () => resolve()));
    const started = performance.now();
    await sync.stop();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(logs.at('warn')).toEqual([]);
  });

  it('logs a database outage once and keeps going', async () => {
    // A pool on a database that does not exist: every write fails.
    const broken = openDatabase(databaseUrl('dispatch_no_such_database'), 1);
    onTestFinished(() => broken.close());
    const logs = captureLogs();
    const sync = new DirectorySync({
      db: broken.db,
      warren: createWarrenClient({ baseUrl: warren.url, token: WARREN_TOKEN, timeoutMs: 500 }),
      promptforge: createPromptForgeClient({ baseUrl: forge.url, token: FORGE_TOKEN, timeoutMs: 500 }),
      logger: logs.logger,
      stateTtlMs: 10,
      personaTtlMs: PERSONA_TTL_MS,
    });
    running.push(sync);
    sync.start();
    await waitFor(() => warren.calls.length >= 3, { what: 'three sync attempts' });
    await sync.stop();
    expect(logs.at('warn').filter((line) => line.service === 'database')).toHaveLength(1);
  });
});

describe('createDirectorySync', () => {
  it('is null in standalone mode', () => {
    const deps = { db: database.handle.db, logger: captureLogs().logger, metrics: createMetrics() };
    expect(createDirectorySync(parseConfig({}), deps)).toBeNull();
    expect(createDirectorySync(parseConfig({ warren: { url: warren.url } }), deps)).toBeNull();
  });

  it('wires both clients from the config, tokens and metrics included', async () => {
    const metrics = createMetrics();
    const logs = captureLogs();
    const built = createDirectorySync(
      parseConfig({
        warren: { url: warren.url, token: WARREN_TOKEN, state_ttl_ms: 1_000 },
        promptforge: { url: forge.url, token: FORGE_TOKEN },
      }),
      { db: database.handle.db, logger: logs.logger, metrics },
    );
    expect(built).not.toBeNull();
    running.push(built!.sync);
    await built!.sync.runOnce();
    expect(await statuses()).toEqual({ alpha: 'ready', beta: 'sleeping', gamma: 'unknown' });
    expect(await gauge(metrics, 'warren')).toBe(1);
    expect(await gauge(metrics, 'promptforge')).toBe(1);
    await expect(built!.warren.wakeAgent('beta')).resolves.toMatchObject({ name: 'beta', status: 'starting' });
  });
});
