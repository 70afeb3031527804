import { readFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { taskPolicy } from '../../src/app.js';
import { createApi } from '../../src/http/api.js';
import { createOpsApp } from '../../src/http/ops.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { NO_TRACING } from '../../src/observability/tracing.js';
import { AssignmentHub } from '../../src/agents/assignment-hub.js';
import { LiveFeed } from '../../src/ui/live-feed.js';
import { API_DESCRIPTION_VERSION, apiDeclarations, apiRouters, openApiJson, undocumentedRoutes } from '../../src/routes.js';
import { createTestDatabase } from '../helpers/database.js';
import { startTestDispatch, testConfig } from '../helpers/dispatch.js';
import { assertDocumentedResponse, openApiDocument } from '../helpers/openapi-contract.js';

/**
 * openapi.json covers the API exactly: every route Hono mounts is documented (or excluded on
 * purpose, with a reason) and every documented operation is mounted; the document is served
 * without a credential, and its browsable page loads only files this server ships.
 */
const database = await createTestDatabase();
const dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' } });
afterAll(async () => {
  await dispatch.stop();
  await database.drop();
});

type Mounted = { method: string; path: string };

/** What Hono actually routes: method and path (`:id` written `{id}`), middleware left out. */
function mountedRoutes(app: { routes: { method: string; path: string }[] }): Mounted[] {
  const seen = new Map<string, Mounted>();
  for (const { method, path } of app.routes) {
    if (method === 'ALL') continue;
    const route = { method: method.toLowerCase(), path: path.replace(/:([A-Za-z_][\w]*)/g, '{$1}') };
    seen.set(`${route.method} ${route.path}`, route);
  }
  return [...seen.values()];
}

function documented(surfaces: string[]): Mounted[] {
  return apiDeclarations.flatMap(({ operations }) =>
    operations.filter((op) => surfaces.includes(op.surface ?? 'api')).map((op) => ({ method: op.method, path: op.path })),
  );
}

const key = (r: Mounted) => `${r.method.toUpperCase()} ${r.path}`;

describe('openapi.json covers every route, both ways', () => {
  // The app exactly as a replica builds it, on this file's real database.
  const config = testConfig();
  const metrics = createMetrics();
  const logger = createLogger(config.logging);
  const auth = { mode: 'token' as const, adminToken: config.server.admin_token, verify: async () => undefined };
  const api = createApi({
    logger,
    metrics,
    auth,
    rateLimitPerMinute: 1,
    bodyLimitBytes: 1024,
    routers: apiRouters({
      db: database.handle.db,
      metrics,
      tracer: NO_TRACING,
      policy: taskPolicy(config),
      adminToken: config.server.admin_token,
      defaultMaxConcurrent: 1,
      agingMs: config.assignment.aging_ms,
      agentsFromWarren: false,
      auth,
      // Built, never started: only their routes are read here (the hub never reads a session).
      feed: new LiveFeed(database.handle.db, logger),
      assignmentHub: new AssignmentHub(database.handle.db, { query: () => Promise.reject(new Error('not started')) }, { keepaliveMs: 15_000, heartbeatIntervalMs: null }, logger),
    }),
  });
  const ops = createOpsApp({ registry: metrics.registry, isReady: async () => true });

  it('documents every route the API listener mounts, except the ones excluded with a reason', () => {
    const documentedKeys = new Set(documented(['api', 'public']).map(key));
    const missing = mountedRoutes(api)
      .filter((r) => !documentedKeys.has(key(r)))
      .filter((r) => !undocumentedRoutes.some((x) => x.path.test(r.path)));
    expect(missing.map(key), 'mounted but not in openapi.json: declare them in the router\'s *.openapi.ts (docs/API.md)').toEqual([]);
  });

  it('mounts every operation the document declares for the API listener', () => {
    const mountedKeys = new Set(mountedRoutes(api).map(key));
    const phantom = documented(['api', 'public']).filter((r) => !mountedKeys.has(key(r)));
    expect(phantom.map(key), 'declared in openapi.json but no such route is mounted').toEqual([]);
  });

  it('covers the ops listener the same way', () => {
    expect(mountedRoutes(ops).map(key).sort()).toEqual(documented(['ops']).map(key).sort());
  });

  it('excludes nothing that is not mounted, and says why for each exclusion', () => {
    for (const exclusion of undocumentedRoutes) {
      expect(mountedRoutes(api).some((r) => exclusion.path.test(r.path)), `stale exclusion ${exclusion.path}`).toBe(true);
      expect(exclusion.why.length).toBeGreaterThan(20);
    }
  });

  it('gives every operation a unique operationId and a tag', () => {
    const operations = Object.values(openApiDocument.paths as Record<string, Record<string, any>>).flatMap((item) =>
      Object.entries(item).filter(([method]) => method !== 'servers').map(([, op]) => op),
    );
    expect(operations.length).toBe(documented(['api', 'public', 'ops']).length);
    expect(new Set(operations.map((op) => op.operationId)).size).toBe(operations.length);
    for (const op of operations) expect(op.tags).toHaveLength(1);
  });

  it('is the committed openapi.json, at the package version', async () => {
    expect(await readFile(new URL('../../openapi.json', import.meta.url), 'utf8'), 'run `npm run openapi` and commit openapi.json').toBe(openApiJson());
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(openApiDocument.info.version).toBe(pkg.version);
    expect(API_DESCRIPTION_VERSION).toBe(pkg.version);
  });
});

describe('GET /openapi.json and GET /docs', () => {
  it('serves the document without a credential, in token mode', async () => {
    const response = await fetch(`${dispatch.baseUrl}/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.text()).toBe(openApiJson());
    // The API itself still wants a credential.
    expect((await fetch(`${dispatch.baseUrl}/api/v1/tasks`)).status).toBe(401);
  });

  it('serves a page whose every script, style and fetch stays on this server', async () => {
    const page = await fetch(`${dispatch.baseUrl}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    const html = await page.text();
    const references = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(references.length).toBeGreaterThanOrEqual(4);
    for (const reference of references) {
      expect(reference, 'no CDN: every asset comes from this server').toMatch(/^\/docs\//);
      const asset = await fetch(`${dispatch.baseUrl}${reference}`);
      expect(asset.status, reference).toBe(200);
      expect((await asset.arrayBuffer()).byteLength, reference).toBeGreaterThan(100);
    }
    const init = await (await fetch(`${dispatch.baseUrl}/docs/init.js`)).text();
    expect(init).toContain("url: '/openapi.json'");
    expect(init).toContain('validatorUrl: null');
  });

  it('serves only the files it lists under /docs/', async () => {
    for (const name of ['package.json', 'constructor', '__proto__', '..%2Fpackage.json', 'index.html']) {
      const response = await fetch(`${dispatch.baseUrl}/docs/${name}`);
      expect(response.status, name).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
  });

  it('answers the ops routes as documented', async () => {
    for (const path of ['/health', '/ready', '/metrics']) {
      const response = await fetch(`${dispatch.opsUrl}${path}`);
      const text = await response.text();
      const type = response.headers.get('content-type');
      const body = type?.startsWith('application/json') ? JSON.parse(text) : text;
      assertDocumentedResponse({ method: 'GET', url: path, listener: 'ops', status: response.status, contentType: type, body });
    }
  });
});
