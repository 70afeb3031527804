import { describe, expect, it } from 'vitest';
import { STREAM_MAX_AGE_MS, planStream } from '../../src/events/stream.js';
import { encodeBody, parseAgentSubject, subjectCovers, taskEventMessage } from '../../src/events/subjects.js';
import { publishInTaskOrder } from '../../src/events/outbox-publisher.js';
import type { OwedEvent } from '../../src/events/outbox.queries.js';

const TASK = '0b7e7a4e-1f7e-4c1e-9d3a-2a9f6c1d2e3f';
const EVENT_ID = 'f1d2c3b4-a5b6-4c7d-8e9f-0a1b2c3d4e5f';
const AT = new Date('2026-01-02T03:04:05.678Z');

const row = (event: string, payload: unknown) => ({ event_id: EVENT_ID, task_id: TASK, event, payload, created_at: AT });

describe('taskEventMessage', () => {
  it('puts reference events on swarm.task.<id>.<name> with the stored payload and the envelope', () => {
    const message = taskEventMessage(row('assigned', { task_id: TASK, assignee: 'a1', scope: 'code', attempt: 1 }));
    expect(message).toEqual({
      subject: `swarm.task.${TASK}.assigned`,
      msgId: EVENT_ID,
      body: { task_id: TASK, assignee: 'a1', scope: 'code', attempt: 1, event_id: EVENT_ID, occurred_at: '2026-01-02T03:04:05.678Z' },
    });
  });

  it('publishes a retried failure as failed with retrying: true, and a final one with retrying: false', () => {
    expect(taskEventMessage(row('fail_retry', { task_id: TASK, error: 'x' }))).toMatchObject({
      subject: `swarm.task.${TASK}.failed`,
      body: { error: 'x', retrying: true },
    });
    expect(taskEventMessage(row('failed', { task_id: TASK, error: 'x' }))).toMatchObject({
      subject: `swarm.task.${TASK}.failed`,
      body: { error: 'x', retrying: false },
    });
  });

  it('publishes both timeout outcomes on .timeout with outcome', () => {
    const payload = { task_id: TASK, retry_count: 1, max_retries: 2 };
    expect(taskEventMessage(row('timeout_retry', payload))).toMatchObject({
      subject: `swarm.task.${TASK}.timeout`,
      body: { ...payload, outcome: 'retry', retrying: true },
    });
    expect(taskEventMessage(row('timeout_exhausted', payload))).toMatchObject({
      subject: `swarm.task.${TASK}.timeout`,
      body: { ...payload, outcome: 'exhausted', retrying: false },
    });
  });

  it('keeps other names, and does not let a progress payload forge the envelope', () => {
    const message = taskEventMessage(row('progress', { pct: 50, task_id: 'forged', event_id: 'forged', occurred_at: 'then' }));
    expect(message.subject).toBe(`swarm.task.${TASK}.progress`);
    expect(message.body).toEqual({ pct: 50, task_id: TASK, event_id: EVENT_ID, occurred_at: AT.toISOString() });
    expect(taskEventMessage(row('wake_timeout', {})).subject).toBe(`swarm.task.${TASK}.wake_timeout`);
    // A non-object payload is still a JSON object on the wire.
    expect(taskEventMessage(row('progress', [1, 2])).body.payload).toEqual([1, 2]);
  });
});

describe('encodeBody', () => {
  it('passes a body under the limit unchanged and cuts a larger one down to its small fields', () => {
    const small = { task_id: TASK, result: 'ok' };
    expect(JSON.parse(Buffer.from(encodeBody(small, 1_000)).toString())).toEqual(small);
    const big = { task_id: TASK, event_id: EVENT_ID, result: 'x'.repeat(5_000) };
    const cut = JSON.parse(Buffer.from(encodeBody(big, 1_000)).toString());
    expect(cut).toEqual({ task_id: TASK, event_id: EVENT_ID, truncated: true, original_bytes: JSON.stringify(big).length });
  });
});

describe('subjects', () => {
  it('parses agent lifecycle subjects and ignores others', () => {
    expect(parseAgentSubject('swarm.agent.coder-1.stopped')).toEqual({ agent: 'coder-1', lifecycle: 'stopped' });
    expect(parseAgentSubject('swarm.agent.coder-1.heartbeat')).toBeNull();
    expect(parseAgentSubject('swarm.task.x.ready')).toBeNull();
  });

  it('knows when one subject filter covers another', () => {
    expect(subjectCovers('swarm.task.>', 'swarm.task.>')).toBe(true);
    expect(subjectCovers('swarm.>', 'swarm.task.>')).toBe(true);
    expect(subjectCovers('>', 'swarm.dispatch.>')).toBe(true);
    expect(subjectCovers('swarm.*.>', 'swarm.task.>')).toBe(true);
    expect(subjectCovers('swarm.task.*', 'swarm.task.>')).toBe(false);
    expect(subjectCovers('swarm.task.request', 'swarm.task.>')).toBe(false);
    expect(subjectCovers('swarm.dispatch.>', 'swarm.task.>')).toBe(false);
  });
});

describe('planStream', () => {
  const ns = (ms: number) => ms * 1_000_000;
  const existing = (overrides: Record<string, unknown>) =>
    ({
      name: 'DISPATCH_EVENTS',
      subjects: ['swarm.task.>', 'swarm.dispatch.>'],
      max_age: ns(STREAM_MAX_AGE_MS),
      duplicate_window: ns(300_000),
      num_replicas: 3,
      max_bytes: 1_000_000,
      ...overrides,
    }) as never;

  it('creates the stream when there is none', () => {
    const plan = planStream(null);
    expect(plan.action).toBe('create');
  });

  it('leaves a conforming stream alone, whatever else the operator set', () => {
    expect(planStream(existing({}))).toEqual({ action: 'none' });
    expect(planStream(existing({ subjects: ['swarm.>'], max_age: ns(3_600_000) }))).toEqual({ action: 'none' });
  });

  it('adds missing subjects, a max age when unlimited, and a usable duplicate window, keeping the rest', () => {
    const plan = planStream(existing({ subjects: ['swarm.task.>', 'ops.audit'], max_age: 0, duplicate_window: ns(10_000) }));
    expect(plan.action).toBe('update');
    if (plan.action !== 'update') return;
    expect(plan.config.subjects).toEqual(['swarm.task.>', 'ops.audit', 'swarm.dispatch.>']);
    expect(plan.config.max_age).toBe(ns(STREAM_MAX_AGE_MS));
    expect(plan.config.duplicate_window).toBe(ns(300_000));
    expect(plan.config.num_replicas).toBe(3);
    expect(plan.config.max_bytes).toBe(1_000_000);
  });
});

describe('publishInTaskOrder', () => {
  const owed = (id: number, task: string): OwedEvent => ({ id, event_id: `e${id}`, task_id: task, event: 'progress', payload: {}, created_at: AT });

  it('publishes each task in order and holds a task back after its first failure', async () => {
    const sent: string[] = [];
    const rows = [owed(1, 'a'), owed(2, 'b'), owed(3, 'a'), owed(4, 'b'), owed(5, 'a')];
    const result = await publishInTaskOrder(rows, async (message) => {
      if (message.msgId === 'e3') throw new Error('nats down');
      sent.push(message.msgId);
      return { duplicate: message.msgId === 'e2' };
    });
    expect(sent.filter((id) => ['e1', 'e3', 'e5'].includes(id))).toEqual(['e1']);
    expect(sent.filter((id) => ['e2', 'e4'].includes(id))).toEqual(['e2', 'e4']);
    expect(result.published.map((r) => r.id).sort()).toEqual([1, 2, 4]);
    expect(result.held).toBe(2);
    expect(result.duplicates).toBe(1);
    expect((result.error as Error).message).toBe('nats down');
  });
});
