import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium } from '../helpers/browser.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The operators' dashboard in a real browser (Debian's chromium driven by playwright-core) against
 * a real Dispatch on PostgreSQL, in token mode: sign in, watch a queue grow without reloading,
 * read a task's placement, drain an agent and pause a scope by clicking, then check the database.
 * At a desktop width and at a phone's; screenshots of each page go to test-output/screenshots/.
 */
const missing = chromiumMissing();
if (missing && process.env.CI === 'true') throw new Error(missing);
if (missing) console.log(`skipping the dashboard browser tests: ${missing}`);

const SCREENSHOTS = path.resolve('test-output/screenshots');
const asAdmin = { agent: null, token: ADMIN_TOKEN } as const;
/** A real browser on a loaded 2-core machine: generous, but a live update still has to arrive. */
const LIVE_MS = 15_000;

describe.skipIf(missing !== undefined)('dashboard in a browser', () => {
  let database: TestDatabase;
  let dispatch: TestDispatch;
  let api: ApiClient;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    database = await createTestDatabase();
    dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' } });
    api = apiClient(dispatch.baseUrl);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await dispatch?.stop();
    await database?.drop();
  });

  const db = () => database.handle.db;

  async function createTasks(scope: string, count: number, title = 'a task'): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const created = await api('POST', '/api/v1/tasks', { ...asAdmin, body: { title: `${title} ${i + 1}`, scope } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      ids.push(created.body.id);
    }
    return ids;
  }

  async function signIn(page: Page, token: string): Promise<void> {
    await page.goto(`${dispatch.baseUrl}/ui`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${dispatch.baseUrl}/ui`);
    await page.getByText('live', { exact: true }).waitFor({ timeout: LIVE_MS });
  }

  /** Clicks an action button and confirms in the dialog; resolves once the page reports success. */
  async function act(page: Page, buttonName: string): Promise<void> {
    await page.getByRole('button', { name: buttonName }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await page.locator('#action-status.ok').waitFor({ timeout: LIVE_MS });
  }

  for (const [width, height] of [
    [1280, 800],
    [390, 844],
  ] as const) {
    it(`at ${width} px: sign in, live depth, placement, drain and pause by clicking`, { timeout: 120_000 }, async () => {
      const context = await browser.newContext({ viewport: { width, height } });
      const page = await context.newPage();
      const shot = (name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
      try {
        await signIn(page, ADMIN_TOKEN);
        const cookie = (await context.cookies()).find((c) => c.name === 'dispatch_ui');
        expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ui' });

        // A queue nobody serves grows while the page is open: the count changes without a reload.
        const queue = `queue-${width}`;
        await createTasks(queue, 1);
        const pending = page.locator(`tr[data-scope="${queue}"] [data-count="pending"]`);
        await expect.poll(() => pending.textContent(), { timeout: LIVE_MS }).toBe('1');
        await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
        await createTasks(queue, 3);
        await expect.poll(() => pending.textContent(), { timeout: LIVE_MS }).toBe('4');
        expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
        await shot('overview');

        // An agent takes a task of its scope; the task page explains the placement.
        const agent = `worker-${width}`;
        const scope = `work-${width}`;
        const registered = await api('PUT', `/api/v1/agents/${agent}`, { ...asAdmin, body: { capabilities: [scope] } });
        expect(registered.status, JSON.stringify(registered.body)).toBe(200);
        const [taskId] = await createTasks(scope, 1, 'review the patch');
        await waitFor(async () => (await db().selectFrom('dispatch_tasks').select('assignee').where('id', '=', taskId!).executeTakeFirst())?.assignee === agent, {
          what: 'the task assigned',
          timeoutMs: LIVE_MS,
        });

        await page.getByRole('link', { name: 'Agents' }).click();
        const agentRow = page.locator(`tr[data-agent="${agent}"]`);
        await agentRow.getByRole('link', { name: 'review the patch 1' }).waitFor({ timeout: LIVE_MS });
        await shot('agents');

        await page.getByRole('link', { name: 'Tasks', exact: true }).click();
        await page.getByLabel('Scope').fill(scope);
        await page.getByRole('button', { name: 'Filter' }).click();
        await shot('tasks');
        await page.getByRole('link', { name: 'review the patch 1' }).click();
        const placement = page.locator('#placement');
        await expect.poll(() => placement.textContent()).toContain(agent);
        expect(await placement.textContent()).toContain('won');
        expect(await page.locator('#holds').textContent()).toContain(agent);
        await shot('task');

        // Drain by clicking: the button changes in place and the row in the database says so.
        await page.getByRole('link', { name: 'Agents' }).click();
        await act(page, `Drain ${agent}`);
        const row = await db().selectFrom('dispatch_agents').select(['drained', 'drained_by']).where('name', '=', agent).executeTakeFirstOrThrow();
        expect(row).toEqual({ drained: true, drained_by: 'bootstrap' });
        await agentRow.locator('[data-drained="true"]').waitFor({ timeout: LIVE_MS });
        // The same by keyboard alone: Enter on the button, Tab from Cancel (focused first) to Confirm, Enter.
        await page.getByRole('button', { name: `Undrain ${agent}` }).focus();
        await page.keyboard.press('Enter');
        await expect.poll(() => page.evaluate(() => (globalThis as unknown as { document: { activeElement: { textContent: string } | null } }).document.activeElement?.textContent)).toBe('Cancel');
        await page.keyboard.press('Tab');
        await page.keyboard.press('Enter');
        await waitFor(async () => (await db().selectFrom('dispatch_agents').select('drained').where('name', '=', agent).executeTakeFirstOrThrow()).drained === false, {
          what: 'the agent undrained by keyboard',
          timeoutMs: LIVE_MS,
        });

        // Pause by clicking: the scope's state in the database, and the badge on the page.
        await page.getByRole('link', { name: 'Overview' }).click();
        await act(page, `Pause ${queue}`);
        const scopeRow = await db().selectFrom('dispatch_scopes').select(['paused', 'changed_by']).where('scope', '=', queue).executeTakeFirstOrThrow();
        expect(scopeRow).toEqual({ paused: true, changed_by: 'bootstrap' });
        await page.locator(`tr[data-scope="${queue}"] [data-state]`).getByText('paused').waitFor({ timeout: LIVE_MS });
        await shot('overview-paused');
      } finally {
        await context.close();
      }
    });
  }
});
