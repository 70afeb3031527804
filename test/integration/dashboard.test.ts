import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The dashboard's guards over plain HTTP (the browser test covers the pages in chromium): who gets
 * in, what the session cookie is, that actions need an admin and cannot be forged cross-site, and
 * that pages, fragments and the event stream answer what the client script expects.
 */
let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;
const asAdmin = { agent: null, token: ADMIN_TOKEN } as const;

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' } });
  api = apiClient(dispatch.baseUrl);
});
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

const db = () => database.handle.db;

async function issue(agent: string, role: string): Promise<{ id: string; token: string }> {
  const response = await api('POST', `/api/v1/agents/${agent}/credentials`, { ...asAdmin, body: { role } });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}

async function ui(path: string, init: { method?: string; token?: string; headers?: Record<string, string>; body?: unknown; form?: string } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers.cookie = `dispatch_ui=${init.token}`;
  let body: string | undefined;
  if (init.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = init.form;
  } else if (init.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.body);
  }
  const response = await fetch(`${dispatch.baseUrl}${path}`, { method: init.method ?? 'GET', headers, body, redirect: 'manual' });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const action = (path: string, token: string, body: unknown = {}, headers: Record<string, string> = { 'x-dispatch-ui': '1' }) =>
  ui(path, { method: 'POST', token, body, headers });

async function createTask(scope: string): Promise<string> {
  const created = await api('POST', '/api/v1/tasks', { ...asAdmin, body: { title: 't', scope } });
  expect(created.status).toBe(201);
  return created.body.id;
}

describe('signing in', () => {
  it('sends a signed-out browser to the sign-in form; the live endpoints answer 401', async () => {
    const page = await ui('/ui/agents');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/ui/login');
    expect((await ui('/ui/events')).status).toBe(401);
    expect((await ui('/ui', { headers: { 'x-dispatch-fragment': 'live' } })).status).toBe(401);
  });

  it('takes an observer or admin token into an HttpOnly, SameSite=Strict cookie for /ui, and refuses the rest', async () => {
    const observer = await issue('watcher', 'observer');
    const signedIn = await ui('/ui/login', { method: 'POST', form: `token=${encodeURIComponent(observer.token)}` });
    expect(signedIn.status).toBe(303);
    const cookie = signedIn.headers.get('set-cookie')!;
    expect(cookie).toContain(`dispatch_ui=${observer.token}`);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\/ui/);
    // Plain http on loopback is the one case without Secure (browsers would drop it there).
    expect(cookie).not.toMatch(/Secure/);

    const wrong = await ui('/ui/login', { method: 'POST', form: 'token=dsp_nothing-of-the-sort' });
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('Not a valid token');
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const worker = await issue('coder-9', 'worker');
    const refused = await ui('/ui/login', { method: 'POST', form: `token=${worker.token}` });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('observer or admin');
  });

  it('marks the cookie Secure for any other host (the browser reached Dispatch through a proxy or by name)', async () => {
    const cookie = await new Promise<string>((resolve, reject) => {
      const body = `token=${ADMIN_TOKEN}`;
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: dispatch.dispatch.apiPort,
          path: '/ui/login',
          method: 'POST',
          headers: { host: 'dispatch.example', 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          resolve(String(res.headers['set-cookie']));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(cookie).toMatch(/; Secure/);
  });

  it('refuses a sign-in posted from another site', async () => {
    const forged = await ui('/ui/login', { method: 'POST', form: `token=${ADMIN_TOKEN}`, headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' } });
    expect(forged.status).toBe(403);
    expect(forged.headers.get('set-cookie')).toBeNull();
  });

  it('lets a revoked credential go at its next request, and signs out', async () => {
    const observer = await issue('watcher-2', 'observer');
    expect((await ui('/ui', { token: observer.token })).status).toBe(200);
    expect((await api('DELETE', `/api/v1/agents/watcher-2/credentials/${observer.id}`, asAdmin)).status).toBe(200);
    const after = await waitFor(async () => {
      const page = await ui('/ui', { token: observer.token });
      return page.status === 303 ? page : undefined;
    }, { what: 'the revoked session sent to sign in' });
    expect(after.headers.get('set-cookie')).toMatch(/dispatch_ui=;/);
    const out = await ui('/ui/logout', { method: 'POST', token: ADMIN_TOKEN });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/dispatch_ui=;.*Max-Age=0/);
  });
});

describe('pages', () => {
  it('never show the token, carry a strict CSP, and render only the live region for the script', async () => {
    await createTask('pages-scope');
    // The overview renders from the replica's snapshot, at most a tick old.
    const page = await waitFor(async () => {
      const answer = await ui('/ui', { token: ADMIN_TOKEN });
      return answer.text.includes('pages-scope') ? answer : undefined;
    }, { what: 'the new scope on the overview' });
    expect(page.status).toBe(200);
    expect(page.text).not.toContain(ADMIN_TOKEN);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const fragment = await ui('/ui', { token: ADMIN_TOKEN, headers: { 'x-dispatch-fragment': 'live' } });
    expect(fragment.status).toBe(200);
    expect(fragment.text).not.toContain('<html');
    expect(fragment.text).toContain('data-scope="pages-scope"');
    expect(fragment.headers.get('x-dispatch-version')).toBeTruthy();
    const script = await ui('/ui/assets/dashboard.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('text/javascript');
  });

  it('say so in a page when a task does not exist or the filter is wrong', async () => {
    const missing = await ui('/ui/tasks/01900000-0000-7000-8000-000000000000', { token: ADMIN_TOKEN });
    expect(missing.status).toBe(404);
    expect(missing.text).toContain('not found');
    const bad = await ui('/ui/tasks?status=sleeping', { token: ADMIN_TOKEN });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('query.status');
  });

  it('stream a snapshot version at once, and a new one when a task is created', async () => {
    const controller = new AbortController();
    const response = await fetch(`${dispatch.baseUrl}/ui/events`, { headers: { cookie: `dispatch_ui=${ADMIN_TOKEN}` }, signal: controller.signal });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    const versions: string[] = [];
    let buffered = '';
    const next = async () => {
      for (;;) {
        const match = /data: (\{.*\})\n/.exec(buffered);
        if (match) {
          buffered = buffered.slice(match.index + match[0].length);
          return (JSON.parse(match[1]!) as { version: string }).version;
        }
        const { value } = await reader.read();
        buffered += new TextDecoder().decode(value);
      }
    };
    try {
      versions.push(await next());
      await createTask('stream-scope');
      for (let i = 0; i < 30 && versions.at(-1) === versions[0]; i++) versions.push(await next());
      expect(versions.at(-1)).not.toBe(versions[0]);
    } finally {
      controller.abort();
    }
  });
});

describe('actions', () => {
  it('are for admins only: an observer sees no buttons and is refused', async () => {
    const observer = await issue('watcher-3', 'observer');
    const page = await ui('/ui/agents', { token: observer.token });
    expect(page.text).not.toContain('data-action');
    const refused = await action('/ui/agents/coder-1/drain', observer.token, { drained: true });
    expect(refused.status).toBe(403);
    expect(await db().selectFrom('dispatch_agents').select('name').where('name', '=', 'coder-1').executeTakeFirst()).toBeUndefined();
  });

  it('need the X-Dispatch-UI header and our own origin (no cross-site forgery)', async () => {
    expect((await action('/ui/agents/coder-2/drain', ADMIN_TOKEN, { drained: true }, {})).status).toBe(403);
    const crossSite = await action('/ui/agents/coder-2/drain', ADMIN_TOKEN, { drained: true }, { 'x-dispatch-ui': '1', origin: 'http://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(await db().selectFrom('dispatch_agents').select('name').where('name', '=', 'coder-2').executeTakeFirst()).toBeUndefined();
    const done = await action('/ui/agents/coder-2/drain', ADMIN_TOKEN, { drained: true });
    expect(done.status, done.text).toBe(200);
    expect(await db().selectFrom('dispatch_agents').select(['drained', 'drained_by']).where('name', '=', 'coder-2').executeTakeFirst()).toEqual({
      drained: true,
      drained_by: 'bootstrap',
    });
  });

  it('name the field a bad body gets wrong', async () => {
    const bad = await action('/ui/scopes/x/pause', ADMIN_TOKEN, { paused: 'yes' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error.details[0].field).toBe('paused');
  });

  it('cancel the open tasks of a bulk selection, each with its audit event, and skip finished ones', async () => {
    const [open, finished] = [await createTask('bulk-scope'), await createTask('bulk-scope')];
    expect((await api('PATCH', `/api/v1/tasks/${finished}`, { ...asAdmin, body: { status: 'cancelled' } })).status).toBe(200);
    const bulk = await action('/ui/tasks/bulk', ADMIN_TOKEN, { action: 'cancel', ids: [open, finished] });
    expect(bulk.status, bulk.text).toBe(200);
    expect(JSON.parse(bulk.text).message).toContain('1 of 2');
    const events = await db().selectFrom('dispatch_task_events').select(['task_id', 'payload']).where('task_id', '=', open).where('event', '=', 'cancelled').execute();
    expect(events).toEqual([{ task_id: open, payload: expect.objectContaining({ cancelled_by: 'bootstrap' }) }]);
  });
});

describe('header mode on loopback', () => {
  let headerDispatch: TestDispatch;
  beforeAll(async () => {
    headerDispatch = await startTestDispatch(database.url, { auth: { mode: 'header' } });
  });
  afterAll(async () => {
    await headerDispatch?.stop();
  });

  it('opens read-only without signing in; actions still need the admin token', async () => {
    const page = await fetch(`${headerDispatch.baseUrl}/ui/agents`, { redirect: 'manual' });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('read only');
    expect(html).not.toContain('data-action');
    const refused = await fetch(`${headerDispatch.baseUrl}/ui/agents/coder-3/drain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-dispatch-ui': '1' },
      body: JSON.stringify({ drained: true }),
    });
    expect(refused.status).toBe(403);
  });
});
