import { randomUUID } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptLog } from '../../chaos/lib/agents.js';
import { probeUnavailable } from '../../chaos/lib/faults.js';
import { feedTasks } from '../../chaos/lib/feed.js';
import { focusedProfile } from '../../chaos/lib/profile.js';
import { runChaos } from '../../chaos/lib/run-chaos.js';
import type { ReplicaProcess } from '../helpers/replica-process.js';
import { checkAudit, checkOutcomes, checkReassignments, checkStream, type EventRecord, type StreamRecord, type TaskRecord } from '../../chaos/lib/checks.js';
import { auditAssignments } from '../helpers/assignment-audit.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertTasks } from '../helpers/tasks.js';

/**
 * The chaos suite's checks must catch what they claim to catch: each is fed a clean history
 * (passes) and histories with one planted fault (fails, naming it). A check that cannot fail
 * proves nothing.
 */

let seq = 0;
function event(taskId: string, name: string, agent: string | null, attempt: number | null, extra: Partial<EventRecord> = {}): EventRecord {
  seq += 1;
  return { id: seq, event_id: randomUUID(), task_id: taskId, event: name, agent_id: agent, attempt, error: null, created_at: new Date(1_000_000 + seq), ...extra };
}

/** One task completed on its second attempt after a retryable failure, as agents and broker agree. */
function cleanHistory() {
  const id = randomUUID();
  const result = { by: 'a2', attempt: 2, chaos_index: 0 };
  const error = 'chaos retryable failure of task 0 attempt 1 by a1';
  const task: TaskRecord = { id, status: 'completed', attempt: 2, assignee: 'a2', result, error, retry_count: 1, max_retries: 1 };
  const events = [
    event(id, 'created', 'req', 0),
    event(id, 'assigned', 'a1', 1),
    event(id, 'progress', 'a1', 1),
    event(id, 'fail_retry', 'a1', 1, { error }),
    event(id, 'assigned', 'a2', 2),
    event(id, 'progress', 'a2', 2),
    event(id, 'completed', 'a2', 2),
  ];
  const log: AttemptLog[] = [
    { taskId: id, index: 0, attempt: 1, agent: 'a1', action: 'fail_retryable', progress: 'accepted', outcome: 'accepted', error },
    { taskId: id, index: 0, attempt: 2, agent: 'a2', action: 'complete', progress: 'accepted', outcome: 'accepted', result },
  ];
  return { id, task, events, log };
}

const copy = <T>(value: T): T => structuredClone(value);

describe('chaos checks: terminal states against the logbook', () => {
  it('passes a history where broker and agents agree', () => {
    const h = cleanHistory();
    expect(checkOutcomes([h.id], [h.task], h.events, h.log).check.violations).toEqual([]);
  });

  it('flags a lost task, a stuck task and a task nobody created', () => {
    const h = cleanHistory();
    expect(checkOutcomes([h.id, randomUUID()], [h.task], h.events, h.log).check.violations.join()).toMatch(/missing from dispatch_tasks/);
    const stuck = { ...h.task, status: 'running' };
    expect(checkOutcomes([h.id], [stuck], h.events, h.log).check.violations.join()).toMatch(/stuck/);
    const stray = { ...h.task, id: randomUUID() };
    expect(checkOutcomes([h.id], [h.task, stray], h.events, h.log).check.violations.join()).toMatch(/not created by the run/);
  });

  it('flags a completion the agent did not make, or with another result', () => {
    const h = cleanHistory();
    const log = copy(h.log);
    log[1]!.action = 'hang';
    log[1]!.outcome = 'abandoned';
    expect(checkOutcomes([h.id], [h.task], h.events, log).check.violations.join()).toMatch(/final attempt's agent did hang\/abandoned/);
    const otherResult = { ...h.task, result: { by: 'someone else' } };
    expect(checkOutcomes([h.id], [otherResult], h.events, h.log).check.violations.join()).toMatch(/is not what a2 sent/);
  });

  it('flags a timeout whose agent had answered, and a failure with retries left', () => {
    const h = cleanHistory();
    const timedOut = { ...h.task, status: 'timeout', error: 'attempt 2 timed out', retry_count: 1 };
    const events = [...h.events.slice(0, -1), event(h.id, 'timeout_exhausted', 'a2', 2)];
    expect(checkOutcomes([h.id], [timedOut], events, h.log).check.violations.join()).toMatch(/a2 answered the final attempt/);
    const failedEarly = { ...h.task, status: 'failed', attempt: 1, assignee: 'a1', retry_count: 0, error: h.log[0]!.error! };
    const failEvents = h.events.slice(0, 3).concat(event(h.id, 'failed', 'a1', 1, { error: h.log[0]!.error! }));
    expect(checkOutcomes([h.id], [failedEarly], failEvents, h.log.slice(0, 1)).check.violations.join()).toMatch(/retries left/);
  });

  it('flags a finished task that was assigned again, and an accepted call with no event', () => {
    const h = cleanHistory();
    const log = copy(h.log);
    log[0]!.action = 'complete';
    log[0]!.result = { by: 'a1' };
    expect(checkOutcomes([h.id], [h.task], h.events, log).check.violations.join()).toMatch(/ended with an accepted complete, yet the task was assigned again/);
    const withoutCompletion = h.events.filter((e) => e.event !== 'completed');
    expect(checkOutcomes([h.id], [h.task], withoutCompletion, h.log).check.violations.join()).toMatch(/no event for a2's accepted complete/);
  });

  it('resolves an ambiguous call from the events table', () => {
    const h = cleanHistory();
    const log = copy(h.log);
    log[1]!.outcome = 'ambiguous';
    const { check, figures } = checkOutcomes([h.id], [h.task], h.events, log);
    expect(check.violations).toEqual([]);
    expect(figures.ambiguousResolved).toBe(1);
  });
});

describe('chaos checks: JetStream', () => {
  const messagesFor = (events: EventRecord[]): StreamRecord[] =>
    events.map((e, i) => ({ seq: i + 1, subject: `swarm.task.${e.task_id}.${e.event}`, msgId: e.event_id, body: { event_id: e.event_id } }));

  it('passes when every event is there once, in order', () => {
    const { events } = cleanHistory();
    const stats = { seq: 99, subject: 'swarm.dispatch.stats', msgId: undefined, body: { pending: 0 } };
    expect(checkStream(events, [...messagesFor(events), stats]).violations).toEqual([]);
  });

  it('flags a missing event, a duplicate, a stranger and a reordering', () => {
    const { events } = cleanHistory();
    const messages = messagesFor(events);
    expect(checkStream(events, messages.slice(1)).violations.join()).toMatch(/never reached the stream/);
    expect(checkStream(events, [...messages, { ...messages[2]!, seq: 50 }]).violations.join()).toMatch(/in the stream 2 times/);
    const stranger = { seq: 51, subject: `swarm.task.${events[0]!.task_id}.completed`, msgId: randomUUID(), body: {} };
    expect(checkStream(events, [...messages, stranger]).violations.join()).toMatch(/matches no event/);
    const swapped = [...messages];
    [swapped[3], swapped[4]] = [swapped[4]!, swapped[3]!];
    expect(checkStream(events, swapped).violations.join()).toMatch(/stream order differs/);
  });
});

describe('chaos checks: reassignments', () => {
  it('accepts reassignments from stopped agents only', () => {
    const id = randomUUID();
    const at = new Date(5_000_000);
    const reassigned = event(id, 'reassigned', 'a1', 1, { created_at: at });
    expect(checkReassignments([reassigned], [{ agent: 'a1', from: 4_999_000, to: 5_002_000 }]).violations).toEqual([]);
    expect(checkReassignments([reassigned], [{ agent: 'a2', from: 4_999_000, to: 5_002_000 }]).violations.join()).toMatch(/was not stopped/);
    expect(checkReassignments([reassigned], [{ agent: 'a1', from: 9_000_000, to: 9_002_000 }]).ok).toBe(false);
  });
});

describe('chaos checks: assignment audit (events table)', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('flags a task held by two agents and an agent over its limit', async () => {
    const db = database.handle.db;
    const tasks = await insertTasks(db, 3, { scope: 'audit', requester: 'audit' });
    await sql`INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent) VALUES ('solo', '{audit}', 'ready', 1), ('other', '{audit}', 'ready', 1)`.execute(db);
    // Limits never reached prove nothing about limits.
    const idle = checkAudit(await auditAssignments(db, 3));
    expect(idle.violations.join()).toMatch(/no agent ever reached its limit/);
    const [t1, t2, t3] = tasks as [string, string, string];
    await sql`INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt) VALUES (${t3}, 'assigned', 'other', 1), (${t3}, 'completed', 'other', 1)`.execute(db);
    const clean = checkAudit(await auditAssignments(db, 3));
    expect(clean.violations).toEqual([]);
    await sql`
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt)
      VALUES (${t1}, 'assigned', 'solo', 1), (${t1}, 'assigned', 'other', 2), (${t2}, 'assigned', 'solo', 1)`.execute(db);
    const audit = checkAudit(await auditAssignments(db, 3));
    expect(audit.ok).toBe(false);
    expect(audit.violations.join()).toMatch(/assigned to other .* while solo held it/);
    expect(audit.violations.join()).toMatch(/solo held 2 > limit 1/);
  });

  it('judges each assignment by the limit in force then, and still catches a breach of it', async () => {
    const db = database.handle.db;
    const tasks = (await insertTasks(db, 3, { scope: 'elastic', requester: 'audit' })) as [string, string, string];
    // Its limit was 2 while it was given two tasks, and lowered to 1 since (a persona edit).
    await sql`INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent) VALUES ('elastic', '{elastic}', 'ready', 1)`.execute(db);
    const placed = (limit: number) => JSON.stringify({ candidates: [{ agent: 'elastic', outcome: 'won', max_concurrent: limit }] });
    await sql`
      INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, placement)
      VALUES (${tasks[0]}, 'assigned', 'elastic', 1, ${placed(2)}::jsonb), (${tasks[1]}, 'assigned', 'elastic', 1, ${placed(2)}::jsonb)`.execute(db);
    const audit = await auditAssignments(db, 3);
    expect(audit.limitBreaches.filter((b) => b.agent === 'elastic')).toEqual([]);
    // A third while the limit in force was still 2: a breach, planted on purpose.
    await sql`INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, placement) VALUES (${tasks[2]}, 'assigned', 'elastic', 1, ${placed(2)}::jsonb)`.execute(
      db,
    );
    expect(checkAudit(await auditAssignments(db, 3)).violations.join()).toMatch(/elastic held 3 > limit 2/);
  });
});

describe('chaos: the PostgreSQL fault wants 503 with Retry-After, at once', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });
  async function replicaAnswering(name: string, answer: (res: ServerResponse) => void): Promise<ReplicaProcess> {
    const server = createServer((_req, res) => answer(res));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { name, apiUrl: `http://127.0.0.1:${port}`, hasExited: () => false } as unknown as ReplicaProcess;
  }

  it('accepts 503 with Retry-After and flags anything else', async () => {
    const good = await replicaAnswering('good', (res) => res.writeHead(503, { 'retry-after': '1' }).end('{}'));
    const bare = await replicaAnswering('bare', (res) => res.writeHead(503).end('{}'));
    const broken = await replicaAnswering('broken', (res) => res.writeHead(500).end('{}'));
    const hanging = await replicaAnswering('hanging', () => undefined);
    const refusing = { ...(await replicaAnswering('refusing', () => undefined)), name: 'refusing', apiUrl: 'http://127.0.0.1:1' } as ReplicaProcess;
    expect(await probeUnavailable({ slots: [good] }, 500)).toEqual([]);
    const findings = await probeUnavailable({ slots: [good, bare, broken, hanging, refusing, null] }, 500);
    expect(findings).toHaveLength(4);
    expect(findings.join('\n')).toMatch(/bare answered 503 without Retry-After/);
    expect(findings.join('\n')).toMatch(/broken answered 500/);
    expect(findings.join('\n')).toMatch(/hanging gave no answer/);
    expect(findings.join('\n')).toMatch(/refusing gave no answer/);
  });
});

describe('chaos: task creation keeps its statistics', () => {
  it('counts a 500 on creation even when the retry succeeds', async () => {
    let calls = 0;
    const server = createServer((_req, res) => {
      calls += 1;
      if (calls === 1) res.writeHead(500).end('{}');
      else res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: randomUUID() }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const feed = await feedTasks({ ...focusedProfile('warren'), tasks: 1 }, () => [url], { deadline: Date.now() + 10_000 });
      expect(feed.ids.filter(Boolean)).toHaveLength(1);
      expect(feed.stats.serverErrors).toBe(1);
      expect(feed.stats.lastServerError).toMatch(/POST \/api\/v1\/tasks -> 500/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('chaos: a run that cannot prove anything is refused', () => {
  it('rejects a profile without tasks or agents', async () => {
    await expect(runChaos({ profile: { ...focusedProfile('warren'), tasks: 0 } })).rejects.toThrow(/at least one task/);
    await expect(runChaos({ profile: { ...focusedProfile('warren'), agents: 0 } })).rejects.toThrow(/one agent/);
  });
});
