import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DispatchClient } from '../../src/client/index.js';
import { bootstrapToken } from '../../src/cli/connection.js';
import { CLI_PATH, ensureBuilt, runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { freePort } from '../helpers/replica-process.js';
import { assignDirectly, BROKER_NOTES } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The built `dispatch` binary (dist/src/cli.js, what package.json's `bin` points at) against a real
 * Dispatch in token mode: what it prints for people and for scripts, and its exit codes.
 */

let database: TestDatabase;
let dispatch: TestDispatch;
let env: Record<string, string>;
let admin: DispatchClient;
/** Each run of the binary starts a Node process: seconds apiece on a loaded 2-core machine. */
const SLOW = { timeout: 180_000 };

beforeAll(async () => {
  ensureBuilt();
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' } });
  env = { DISPATCH_URL: dispatch.baseUrl, DISPATCH_TOKEN: ADMIN_TOKEN };
  admin = new DispatchClient({ url: dispatch.baseUrl, token: ADMIN_TOKEN });
}, 240_000);
afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

async function cliJson(args: string[]): Promise<any> {
  const result = await runCli([...args, '--json'], { env });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

describe('tasks', () => {
  it('are created, listed, shown, explained and cancelled, as tables for people and JSON for scripts', SLOW, async () => {
    const created = await cliJson(['tasks', 'create', '--title', 'Review PR 42', '--scope', 'review', '--priority', '2', '--context', '{"pr":42}']);
    expect(created).toMatchObject({ title: 'Review PR 42', scope: 'review', priority: 2, status: 'pending', context: { pr: 42 } });

    const listed = await runCli(['tasks', 'ls', '--scope', 'review'], { env });
    expect(listed.code).toBe(0);
    const [header, row] = listed.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+STATUS\s+PRI\s+SCOPE\s+ASSIGNEE\s+ATTEMPT\s+CREATED\s+TITLE$/);
    expect(row).toMatch(new RegExp(`^${created.id}\\s+pending\\s+2\\s+review\\s+-\\s+0\\s+.+Review PR 42$`));
    expect((await cliJson(['tasks', 'ls', '--status', 'pending'])).tasks.map((t: { id: string }) => t.id)).toContain(created.id);

    const shown = await runCli(['tasks', 'show', created.id], { env });
    expect(shown.stdout).toMatch(/^title:\s+Review PR 42$/m);
    expect(shown.stdout).toMatch(/^context:\s+\{"pr":42\}$/m);
    const events = await runCli(['tasks', 'events', created.id], { env });
    expect(events.stdout).toMatch(/^ID\s+AT\s+EVENT\s+AGENT\s+ATTEMPT\s+PAYLOAD$/m);
    expect(events.stdout).toMatch(/\bcreated\b/);
    expect(await cliJson(['tasks', 'placement', created.id])).toMatchObject({ task_id: created.id, status: 'pending' });

    const cancelled = await runCli(['tasks', 'cancel', created.id], { env });
    expect(cancelled).toMatchObject({ code: 0, stdout: `${created.id} cancelled\n` });
    expect((await admin.tasks.get(created.id)).status).toBe('cancelled');
  });

  it('tail --task prints the audit trail as it grows and exits once the task is finished', SLOW, async () => {
    const created = await admin.tasks.create({ title: 'followed', scope: 'tail' });
    const tail = runCli(['tail', '--task', created.id, '--interval', '100'], { env });
    await assignDirectly(database.handle.db, created.id, 'tailed-1');
    const worker = new DispatchClient({ url: dispatch.baseUrl, token: ADMIN_TOKEN, agent: 'tailed-1' });
    await worker.tasks.complete(created.id, { ok: true }, { attempt: 1 });
    const result = await tail;
    expect(result.code, result.stderr).toBe(0);
    const names = result.stdout.trim().split('\n').map((line) => line.split(/\s+/)[1]!).filter((name) => !BROKER_NOTES.has(name));
    expect(names).toEqual(['created', 'assigned', 'completed']);
  });
});

describe('tail --agent', () => {
  it("prints the agent's assignments live, as the stream sends them, until interrupted", SLOW, async () => {
    await admin.agents.register('tail-agent', { capabilities: ['tail-live'], max_concurrent: 5 });
    const child = spawn(process.execPath, [CLI_PATH, 'tail', '--agent', 'tail-agent', '--json'], { env: { PATH: process.env.PATH ?? '', ...env } });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const lines = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; task?: { id: string }; taskId?: string });
      const task = await admin.tasks.create({ title: 'heard live', scope: 'tail-live' });
      await waitFor(() => lines().some((e) => e.type === 'assigned' && e.task?.id === task.id), { what: 'assigned printed', timeoutMs: 60_000 });
      await admin.tasks.cancel(task.id);
      await waitFor(() => lines().some((e) => e.type === 'cancelled' && e.taskId === task.id), { what: 'cancelled printed', timeoutMs: 30_000 });
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});

describe('agents and credentials', () => {
  it('lists agents, drains and undrains them; issues, lists and revokes credentials', SLOW, async () => {
    const issued = await cliJson(['credentials', 'issue', 'cli-worker', '--role', 'worker', '--scopes', 'review,code']);
    expect(issued).toMatchObject({ agent_id: 'cli-worker', role: 'worker', scopes: ['review', 'code'] });
    expect(issued.token).toMatch(/^dsp_/);
    const human = await runCli(['credentials', 'issue', 'cli-worker', '--role', 'observer'], { env });
    expect(human.stdout).toMatch(/token \(shown once, keep it secret\):\ndsp_\S+\n$/);

    const worker = new DispatchClient({ url: dispatch.baseUrl, token: issued.token });
    await worker.agents.register('cli-worker', { capabilities: ['review'], max_concurrent: 3 });
    const agents = await runCli(['agents', 'ls'], { env });
    expect(agents.stdout).toMatch(/^NAME\s+STATUS\s+LOAD\s+DRAINED\s+SOURCE\s+LAST SEEN\s+CAPABILITIES$/m);
    expect(agents.stdout).toMatch(/^cli-worker\s+ready\s+0\/3\s+no\s+standalone\s+\S+ \S+\s+review$/m);
    expect(await runCli(['agents', 'drain', 'cli-worker'], { env })).toMatchObject({ code: 0, stdout: 'cli-worker drained\n' });
    expect((await cliJson(['agents', 'ls'])).find((a: { name: string }) => a.name === 'cli-worker')).toMatchObject({ drained: true, drained_by: 'bootstrap' });
    expect(await runCli(['agents', 'undrain', 'cli-worker'], { env })).toMatchObject({ code: 0, stdout: 'cli-worker undrained\n' });

    const listed = await runCli(['credentials', 'ls', 'cli-worker'], { env });
    expect(listed.stdout).toContain(issued.id);
    expect(listed.stdout).not.toContain(issued.token);
    expect(await runCli(['credentials', 'revoke', 'cli-worker', issued.id], { env })).toMatchObject({ code: 0, stdout: `${issued.id} revoked\n` });
    expect((await cliJson(['credentials', 'ls', 'cli-worker'])).find((c: { id: string }) => c.id === issued.id).revoked_by).toBe('bootstrap');
  });

  it('stats prints the queue', SLOW, async () => {
    const stats = await runCli(['stats'], { env });
    expect(stats.stdout).toMatch(/^pending:\s+\d+$/m);
    expect(await cliJson(['stats'])).toMatchObject({ pending: expect.any(Number), window_seconds: 900 });
  });
});

describe('errors', () => {
  it("exit 1 with the API's message: a bad token, a bad field, an unknown task, no Dispatch at all", SLOW, async () => {
    const badToken = await runCli(['stats', '--token', 'dsp_not-a-credential'], { env });
    expect(badToken.code).toBe(1);
    expect(badToken.stdout).toBe('');
    expect(badToken.stderr).toBe('dispatch: the bearer token is not a valid credential (unknown, revoked or expired)\n  Authorization: the bearer token is not a valid credential (unknown, revoked or expired)\n');

    const badField = await runCli(['tasks', 'create', '--title', 'x', '--scope', 's', '--priority', '9'], { env });
    expect(badField.code).toBe(1);
    expect(badField.stderr).toMatch(/^dispatch: invalid .*priority/);
    expect(badField.stderr).toMatch(/^ {2}priority: /m);

    const missing = await runCli(['tasks', 'show', '00000000-0000-4000-8000-000000000000'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^dispatch: task .* not found/);

    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await runCli(['stats', '--url', nowhere], { env });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`dispatch: cannot reach Dispatch at ${nowhere}`);

    const usage = await runCli(['tasks', 'create', '--title', 'no scope'], { env });
    expect(usage.code).toBe(1);
    expect(usage.stderr).toContain("required option '--scope <scope>' not specified");
  });
});

describe('the bootstrap admin token', () => {
  it('is read from .dispatch/admin-token for a loopback Dispatch when only its owner may read it, and refused otherwise', SLOW, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dispatch-cli-'));
    try {
      mkdirSync(join(dir, '.dispatch'));
      const file = join(dir, '.dispatch', 'admin-token');
      writeFileSync(file, `${ADMIN_TOKEN}\n`, { mode: 0o600 });
      const url = { DISPATCH_URL: dispatch.baseUrl };
      const ok = await runCli(['stats', '--json'], { env: url, cwd: dir });
      expect(ok.code, ok.stderr).toBe(0);
      chmodSync(file, 0o644);
      const refused = await runCli(['stats'], { env: url, cwd: dir });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('is readable or owned by another user: not using it');
      // Never for a Dispatch elsewhere: the admin token would leave the machine.
      chmodSync(file, 0o600);
      expect(bootstrapToken('http://127.0.0.1:8600', file)).toBe(ADMIN_TOKEN);
      expect(bootstrapToken('http://dispatch.example:8600', file)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
