import { isDeepStrictEqual } from 'node:util';
import type { AuditReport } from '../../test/helpers/assignment-audit.js';
import type { AttemptLog, StopWindow } from './agents.js';

/** One line of the summary: a check, its figure, and what broke it. */
export interface CheckResult {
  name: string;
  ok: boolean;
  summary: string;
  /** How many violations in all (the list below is capped). */
  count: number;
  violations: string[];
}

const MAX_LISTED = 25;

function result(name: string, summary: string, violations: string[], count = violations.length): CheckResult {
  return { name, ok: count === 0, summary, count, violations: violations.slice(0, MAX_LISTED) };
}

export interface TaskRecord {
  id: string;
  status: string;
  attempt: number;
  assignee: string | null;
  result: unknown;
  error: string | null;
  retry_count: number;
  max_retries: number;
}

export interface EventRecord {
  id: number;
  event_id: string;
  task_id: string;
  event: string;
  agent_id: string | null;
  attempt: number | null;
  /** payload->>'error' (failures), to tell an agent's failure from the broker's. */
  error: string | null;
  created_at: Date;
}

const TERMINAL = new Set(['completed', 'failed', 'timeout', 'cancelled']);
const BUDGET_ERROR = /^reassignment budget exhausted/;

/** Per-task events in id order. */
export function eventsByTask(events: EventRecord[]): Map<string, EventRecord[]> {
  const byTask = new Map<string, EventRecord[]>();
  for (const e of [...events].sort((a, b) => a.id - b.id)) {
    const list = byTask.get(e.task_id);
    if (list) list.push(e);
    else byTask.set(e.task_id, [e]);
  }
  return byTask;
}

/** The event that records an agent's accepted ending call, if the events table has it. */
function endingEvent(entry: AttemptLog, events: EventRecord[]): EventRecord | undefined {
  return events.find((e) => {
    if (e.attempt !== entry.attempt || e.agent_id !== entry.agent) return false;
    if (entry.action === 'complete') return e.event === 'completed';
    if (entry.action === 'fail_retryable' || entry.action === 'fail_final') return (e.event === 'fail_retry' || e.event === 'failed') && e.error === entry.error;
    return false;
  });
}

export interface OutcomeFigures {
  byStatus: Record<string, number>;
  /** Log entries by action and outcome, e.g. complete/accepted. */
  byAction: Record<string, number>;
  ambiguousResolved: number;
}

/**
 * Every task reached a terminal state that agrees with what its agents did (the logbook), and
 * the events table holds what they did. Per task:
 * - it exists (none lost) and is terminal (none stuck);
 * - completed: the final attempt's agent completed it, and the stored result is the one it sent;
 * - failed: the final attempt's agent failed it (non-retryably, or retryably with no retry left,
 *   with the error it sent), or the reassignment budget ran out while nobody answered it;
 * - timeout: nobody answered the final attempt and every retry was spent;
 * - an earlier attempt never ended in an accepted completion or final failure (a finished task
 *   never comes back), and every accepted call has its event;
 * - one `assigned` event per attempt, retry_count equals the retry events, and the terminal
 *   event matches the status.
 * Ambiguous calls (a 409 after a retried request) are resolved from the events table.
 */
export function checkOutcomes(ids: (string | undefined)[], tasks: TaskRecord[], events: EventRecord[], log: AttemptLog[]): { check: CheckResult; figures: OutcomeFigures } {
  const violations: string[] = [];
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const byTask = eventsByTask(events);
  const logByTask = new Map<string, Map<number, AttemptLog>>();
  for (const entry of log) {
    let attempts = logByTask.get(entry.taskId);
    if (!attempts) logByTask.set(entry.taskId, (attempts = new Map()));
    attempts.set(entry.attempt, entry);
  }
  const figures: OutcomeFigures = { byStatus: {}, byAction: {}, ambiguousResolved: 0 };
  for (const [index, id] of ids.entries()) {
    if (!id) {
      violations.push(`task ${index} was never created`);
      continue;
    }
    const task = byId.get(id);
    if (!task) {
      violations.push(`task ${index} (${id}) is missing from dispatch_tasks`);
      continue;
    }
    figures.byStatus[task.status] = (figures.byStatus[task.status] ?? 0) + 1;
    const taskEvents = byTask.get(id) ?? [];
    const attempts = logByTask.get(id) ?? new Map<number, AttemptLog>();
    const say = (what: string) => violations.push(`task ${index} (${id}, ${task.status}, attempt ${task.attempt}): ${what}`);

    // Resolve ambiguity first: did the call the agent retried take effect the first time?
    for (const entry of attempts.values()) {
      if (entry.outcome === 'ambiguous') {
        entry.outcome = endingEvent(entry, taskEvents) ? 'accepted' : 'rejected';
        figures.ambiguousResolved++;
      }
      const key = `${entry.action}/${entry.outcome}`;
      figures.byAction[key] = (figures.byAction[key] ?? 0) + 1;
    }

    if (!TERMINAL.has(task.status)) {
      say('not terminal (stuck)');
      continue;
    }
    const final = attempts.get(task.attempt);
    const finalAnswered = final?.outcome === 'accepted' && final.action !== 'hang' && final.action !== 'stop';
    switch (task.status) {
      case 'completed':
        if (!final || final.action !== 'complete' || final.outcome !== 'accepted') say(`completed, but the final attempt's agent did ${final ? `${final.action}/${final.outcome}` : 'nothing'}`);
        else if (task.assignee !== final.agent) say(`completed by ${task.assignee}, but ${final.agent} held the final attempt`);
        else if (!isDeepStrictEqual(task.result, final.result)) say(`result ${JSON.stringify(task.result)} is not what ${final.agent} sent`);
        break;
      case 'failed':
        if (task.error !== null && BUDGET_ERROR.test(task.error)) {
          if (finalAnswered) say(`failed by the reassignment budget, but ${final!.agent} had answered (${final!.action})`);
        } else if (!final || final.outcome !== 'accepted' || (final.action !== 'fail_final' && final.action !== 'fail_retryable')) {
          say(`failed (${task.error}), but the final attempt's agent did ${final ? `${final.action}/${final.outcome}` : 'nothing'}`);
        } else if (final.action === 'fail_retryable' && task.retry_count < task.max_retries) {
          say(`failed on a retryable failure with retries left (${task.retry_count}/${task.max_retries})`);
        } else if (task.error !== final.error) say(`error "${task.error}" is not what ${final.agent} sent`);
        break;
      case 'timeout':
        if (finalAnswered) say(`timed out, but ${final!.agent} answered the final attempt (${final!.action})`);
        if (task.retry_count !== task.max_retries) say(`timed out with retries left (${task.retry_count}/${task.max_retries})`);
        break;
      case 'cancelled':
        say('cancelled, but nobody cancels tasks in a chaos run');
        break;
    }

    for (const entry of attempts.values()) {
      if (entry.outcome !== 'accepted') continue;
      if (entry.attempt < task.attempt && (entry.action === 'complete' || entry.action === 'fail_final')) {
        say(`attempt ${entry.attempt} ended with an accepted ${entry.action}, yet the task was assigned again`);
      }
      if ((entry.action === 'complete' || entry.action === 'fail_retryable' || entry.action === 'fail_final') && !endingEvent(entry, taskEvents)) {
        say(`no event for ${entry.agent}'s accepted ${entry.action} of attempt ${entry.attempt}`);
      }
      if (entry.progress === 'accepted' && !taskEvents.some((e) => e.event === 'progress' && e.attempt === entry.attempt && e.agent_id === entry.agent)) {
        say(`no progress event for ${entry.agent}'s accepted progress on attempt ${entry.attempt}`);
      }
    }

    // The events table alone must tell the same story as the row.
    const assigned = taskEvents.filter((e) => e.event === 'assigned').map((e) => e.attempt);
    if (assigned.length !== task.attempt || assigned.some((a, i) => a !== i + 1)) say(`assigned events for attempts [${assigned.join(',')}], expected 1..${task.attempt}`);
    const retries = taskEvents.filter((e) => e.event === 'fail_retry' || e.event === 'timeout_retry').length;
    if (retries !== task.retry_count) say(`retry_count ${task.retry_count} but ${retries} retry events`);
    const terminalEvent = { completed: 'completed', failed: 'failed', timeout: 'timeout_exhausted' }[task.status as 'completed' | 'failed' | 'timeout'];
    const last = [...taskEvents].reverse().find((e) => ['completed', 'failed', 'timeout_exhausted', 'cancelled'].includes(e.event));
    if (terminalEvent && last?.event !== terminalEvent) say(`last terminal event is ${last?.event ?? 'none'}, expected ${terminalEvent}`);
  }
  const extra = tasks.filter((t) => !ids.includes(t.id));
  for (const t of extra.slice(0, 5)) violations.push(`task ${t.id} exists but was not created by the run (duplicate creation?)`);
  const statuses = Object.entries(figures.byStatus)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');
  return {
    check: result('terminal states agree with agents', `${ids.length} tasks: ${statuses}; ${log.length} attempts logged`, violations, violations.length + Math.max(0, extra.length - 5)),
    figures,
  };
}

/** auditAssignments (events table, id order): no task held twice, no agent over its limit. */
export function checkAudit(report: AuditReport): CheckResult {
  const violations = [
    ...report.doubleAssignments.map((d) => `task ${d.taskId} assigned to ${d.newAgent} (event ${d.eventId}) while ${d.holder} held it`),
    ...report.limitBreaches.map((b) => `${b.agent} held ${b.held} > limit ${b.limit} at event ${b.eventId}`),
    ...report.attemptMismatches.map((m) => `task ${m.taskId}: ${m.event} for attempt ${m.got}, but attempt ${m.expected} was held (event ${m.eventId})`),
  ];
  // A run in which no agent was ever full says nothing about limits.
  if (report.agentsAtLimit === 0) violations.push(`no agent ever reached its limit (${report.assignments} assignments): limits were not exercised`);
  return result(
    'no double assignment, no limit breach',
    `${report.assignments} assignments; peak held ${report.peakHeld}; ${report.agentsAtLimit} agents reached their limit`,
    violations,
  );
}

/** A message of DISPATCH_EVENTS as read back. */
export interface StreamRecord {
  seq: number;
  subject: string;
  msgId: string | undefined;
  /** The parsed JSON body; only its event_id is read. */
  body: unknown;
}

/**
 * Every event of dispatch_task_events reached JetStream exactly once (by event id: the message
 * id header, which must equal the body's event_id), nothing else arrived on task subjects, and
 * each task's messages are in the order of its events.
 */
export function checkStream(events: EventRecord[], messages: StreamRecord[]): CheckResult {
  const violations: string[] = [];
  const known = new Map(events.map((e) => [e.event_id, e]));
  const seen = new Map<string, number>();
  const streamOrder = new Map<string, string[]>();
  let taskMessages = 0;
  let duplicates = 0;
  let unknown = 0;
  for (const m of messages) {
    if (!m.subject.startsWith('swarm.task.') || m.subject === 'swarm.task.request') continue;
    taskMessages++;
    const bodyId = typeof m.body === 'object' && m.body !== null ? (m.body as { event_id?: unknown }).event_id : undefined;
    const id = m.msgId ?? bodyId;
    if (m.msgId !== undefined && bodyId !== m.msgId) violations.push(`message ${m.seq}: Nats-Msg-Id ${m.msgId} but body event_id ${String(bodyId)}`);
    if (typeof id !== 'string') {
      violations.push(`message ${m.seq} on ${m.subject} carries no event id`);
      continue;
    }
    const event = known.get(id);
    if (!event) {
      unknown++;
      violations.push(`message ${m.seq} (${id}) matches no event in dispatch_task_events`);
      continue;
    }
    if (!m.subject.startsWith(`swarm.task.${event.task_id}.`)) violations.push(`message ${m.seq} for task ${event.task_id} on subject ${m.subject}`);
    const count = (seen.get(id) ?? 0) + 1;
    seen.set(id, count);
    if (count > 1) {
      duplicates++;
      violations.push(`event ${id} (${event.event} of task ${event.task_id}) is in the stream ${count} times (seq ${m.seq})`);
      continue;
    }
    const order = streamOrder.get(event.task_id);
    if (order) order.push(id);
    else streamOrder.set(event.task_id, [id]);
  }
  let missing = 0;
  for (const e of events) {
    if (!seen.has(e.event_id)) {
      missing++;
      if (missing <= 10) violations.push(`event ${e.event_id} (${e.event} of task ${e.task_id}, id ${e.id}) never reached the stream`);
    }
  }
  let outOfOrder = 0;
  for (const [taskId, list] of eventsByTask(events)) {
    const expected = list.map((e) => e.event_id).filter((id) => seen.has(id));
    const got = streamOrder.get(taskId) ?? [];
    if (!isDeepStrictEqual(expected, got)) {
      outOfOrder++;
      if (outOfOrder <= 10) violations.push(`task ${taskId}: stream order differs from event order`);
    }
  }
  const count = violations.length + Math.max(0, missing - 10) + Math.max(0, outOfOrder - 10);
  return result(
    'events in JetStream exactly once, in order',
    `${events.length} events, ${taskMessages} task messages; missing ${missing}, duplicates ${duplicates}, unknown ${unknown}, tasks out of order ${outOfOrder}`,
    violations,
    count,
  );
}

/**
 * Tasks go back to pending only because their agent stopped: every `reassigned` (and every
 * reassignment-budget failure) names an agent the run stopped, around the time it was stopped.
 */
export function checkReassignments(events: EventRecord[], windows: StopWindow[], slackBeforeMs = 2_000, slackAfterMs = 15_000): CheckResult {
  const violations: string[] = [];
  let reassigned = 0;
  for (const e of events) {
    const budget = e.event === 'failed' && e.error !== null && BUDGET_ERROR.test(e.error);
    if (e.event !== 'reassigned' && !budget) continue;
    reassigned++;
    const t = e.created_at.getTime();
    const explained = windows.some((w) => w.agent === e.agent_id && t >= w.from - slackBeforeMs && t <= w.to + slackAfterMs);
    if (!explained) violations.push(`task ${e.task_id} ${e.event} from ${e.agent_id} at ${e.created_at.toISOString()}, when that agent was not stopped`);
  }
  return result('reassignments only from stopped agents', `${reassigned} reassignments, ${windows.length} agent stops`, violations);
}
