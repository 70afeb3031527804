import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DispatchClient, runAgent, TaskError, type AgentRunner, type AssignmentEvent, type Task } from '../../src/client/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ADMIN_TOKEN, startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { BROKER_NOTES } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The agent SDK (runAgent) and subscribe() against a real Dispatch in token mode: work arrives on
 * the assignment stream, is completed or failed from what the handler does, is taken away through
 * ctx.signal, and a stop finishes what the agent holds.
 */

let database: TestDatabase;
let dispatch: TestDispatch;
let admin: DispatchClient;
let planner: DispatchClient;
const runners: AgentRunner[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, { auth: { mode: 'token' } });
  admin = new DispatchClient({ url: dispatch.baseUrl, token: ADMIN_TOKEN });
  planner = new DispatchClient({ url: dispatch.baseUrl, token: (await admin.credentials.issue('planner', { role: 'requester' })).token });
});
afterAll(async () => {
  await Promise.all(runners.map((r) => r.stop()));
  await dispatch?.stop();
  await database?.drop();
});

const errors: unknown[] = [];

async function agent(name: string, scope: string, handle: (task: Task, ctx: Parameters<Parameters<typeof runAgent>[0]['handle']>[1]) => unknown, maxConcurrent = 1) {
  const { token } = await admin.credentials.issue(name, { role: 'worker', scopes: [scope] });
  const runner = await runAgent({ url: dispatch.baseUrl, token, name, capabilities: [scope], maxConcurrent, handle, handleSignals: false, onError: (e) => errors.push(e) });
  runners.push(runner);
  return runner;
}

const finished = (id: string) => waitFor(async () => {
  const task = await admin.tasks.get(id);
  return ['completed', 'failed', 'cancelled', 'timeout'].includes(task.status) && task;
}, { what: `task ${id} finished`, timeoutMs: 20_000 });

const trail = async (id: string) => (await admin.tasks.events(id)).map((e) => e.event).filter((e) => !BROKER_NOTES.has(e));

describe('runAgent', () => {
  it('completes a task with what the handler returns, after its progress', async () => {
    await agent('sdk-echo', 'sdk-echo', async (task, ctx) => {
      await ctx.progress({ percent: 50 });
      return { echo: task.context, attempt: ctx.attempt };
    });
    const created = await planner.tasks.create({ title: 'echo me', scope: 'sdk-echo', context: { say: 'hi' } });
    const done = await finished(created.id);
    expect(done).toMatchObject({ status: 'completed', assignee: 'sdk-echo', result: { echo: { say: 'hi' }, attempt: 1 } });
    expect(await trail(created.id)).toEqual(['created', 'assigned', 'progress', 'completed']);
  });

  it('fails a task from a throw: retryable unless a TaskError says otherwise', async () => {
    await agent('sdk-failer', 'sdk-fail', (task) => {
      if ((task.context as { fatal: boolean }).fatal) throw new TaskError('cannot be done', { retryable: false });
      throw new Error(`try again (attempt ${task.attempt})`);
    });
    const fatal = await planner.tasks.create({ title: 'fatal', scope: 'sdk-fail', context: { fatal: true }, max_retries: 3 });
    expect(await finished(fatal.id)).toMatchObject({ status: 'failed', error: 'cannot be done', attempt: 1 });
    const flaky = await planner.tasks.create({ title: 'flaky', scope: 'sdk-fail', context: { fatal: false }, max_retries: 1 });
    // Retried once (backoff ~1 s), then failed for good.
    expect(await finished(flaky.id)).toMatchObject({ status: 'failed', error: 'try again (attempt 2)', attempt: 2 });
    expect((await trail(flaky.id)).filter((e) => e.startsWith('fail'))).toEqual(['fail_retry', 'failed']);
  });

  it('runs at most maxConcurrent handlers at once', async () => {
    let running = 0;
    let most = 0;
    const release: (() => void)[] = [];
    await agent('sdk-pair', 'sdk-pair', async () => {
      most = Math.max(most, ++running);
      await new Promise<void>((resolve) => release.push(resolve));
      running--;
      return null;
    }, 2);
    const tasks = await Promise.all(Array.from({ length: 5 }, (_, i) => planner.tasks.create({ title: `pair ${i}`, scope: 'sdk-pair' })));
    for (let left = tasks.length; left > 0; left--) {
      await waitFor(() => release.length === Math.min(2, left), { what: `${Math.min(2, left)} handlers running` });
      expect(running).toBe(Math.min(2, left));
      release.shift()!();
    }
    await Promise.all(tasks.map((t) => finished(t.id)));
    expect(most).toBe(2);
  });

  it("aborts the handler's signal when its task is cancelled, and reports nothing for it", async () => {
    const reasons: string[] = [];
    await agent('sdk-cancel', 'sdk-cancel', async (_task, ctx) => {
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      reasons.push((ctx.signal.reason as Error).message);
      return { too: 'late' };
    });
    const created = await planner.tasks.create({ title: 'cancel me', scope: 'sdk-cancel' });
    await waitFor(async () => (await admin.tasks.get(created.id)).status === 'assigned', { what: 'assigned' });
    const before = errors.length;
    await planner.tasks.cancel(created.id);
    await waitFor(() => reasons.length > 0, { what: 'handler aborted' });
    expect(reasons).toEqual(['task cancelled']);
    expect(await trail(created.id)).toEqual(['created', 'assigned', 'cancelled']);
    expect(errors.slice(before)).toEqual([]);
  });

  it('stop() takes no new work, finishes what it holds, then registers the agent stopped', async () => {
    let release!: () => void;
    const runner = await agent('sdk-stopper', 'sdk-stop', async () => {
      await new Promise<void>((resolve) => (release = resolve));
      return 'finished';
    });
    const held = await planner.tasks.create({ title: 'held', scope: 'sdk-stop' });
    await waitFor(() => runner.running === 1, { what: 'handler running' });
    const stopped = runner.stop();
    await waitFor(async () => (await admin.agents.get('sdk-stopper')).status === 'degraded', { what: 'agent degraded' });
    const later = await planner.tasks.create({ title: 'later', scope: 'sdk-stop' });
    release();
    await stopped;
    expect(await admin.tasks.get(held.id)).toMatchObject({ status: 'completed', result: 'finished' });
    expect(await admin.agents.get('sdk-stopper')).toMatchObject({ status: 'stopped', active_tasks: 0 });
    expect((await admin.tasks.get(later.id)).status).toBe('pending');
    await runner.done;
  });
});

describe('subscribe', () => {
  it('resumes after the last event it delivered: only what happened meanwhile, nothing twice', async () => {
    const { token } = await admin.credentials.issue('sdk-listener', { role: 'worker' });
    const listener = new DispatchClient({ url: dispatch.baseUrl, token });
    await listener.agents.register('sdk-listener', { capabilities: ['sdk-listen'], max_concurrent: 10 });
    const first = await planner.tasks.create({ title: 'first', scope: 'sdk-listen' });
    const seen: AssignmentEvent[] = [];
    const one = listener.subscribe('sdk-listener');
    for await (const event of one) {
      seen.push(event);
      break;
    }
    one.close();
    expect(seen).toMatchObject([{ type: 'assigned', task: { id: first.id, attempt: 1 } }]);
    expect(listener.attemptOf(first.id)).toBe(1);

    // Meanwhile: one more assigned, the first cancelled.
    const second = await planner.tasks.create({ title: 'second', scope: 'sdk-listen' });
    await waitFor(async () => (await admin.tasks.get(second.id)).status === 'assigned', { what: 'second assigned' });
    await planner.tasks.cancel(first.id);

    const resumed: AssignmentEvent[] = [];
    const two = listener.subscribe('sdk-listener', { lastEventId: one.lastEventId, onEvent: (e) => void resumed.push(e) });
    await waitFor(() => resumed.length >= 2, { what: 'missed events replayed' });
    two.close();
    await two.done;
    expect(resumed.map((e) => (e.type === 'assigned' ? `assigned ${e.task.title}` : `${e.type} ${e.taskId}`))).toEqual([
      'assigned second',
      `cancelled ${first.id}`,
    ]);
    expect(listener.attemptOf(first.id)).toBeUndefined();

    // The long poll: the tasks held now, then (from its cursor) nothing new within a second.
    const held = await listener.agents.poll('sdk-listener', { wait: 1 });
    expect(held.events).toMatchObject([{ type: 'assigned', task: { id: second.id, attempt: 1 } }]);
    expect(await listener.agents.poll('sdk-listener', { wait: 1, cursor: held.cursor })).toEqual({ events: [], cursor: held.cursor });
  });
});
