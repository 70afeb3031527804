import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';

/** Events that end the current attempt of a task (the agent no longer holds it). */
const ATTEMPT_ENDS = new Set([
  'completed',
  'failed',
  'fail_retry',
  'timeout_retry',
  'timeout_exhausted',
  'reassigned',
  'wake_timeout',
  'cancelled',
]);

export interface AuditReport {
  events: number;
  assignments: number;
  /** Tasks assigned again while an earlier attempt was still held. */
  doubleAssignments: { taskId: string; eventId: number; holder: string; newAgent: string }[];
  /** Moments an agent held more tasks than its limit. */
  limitBreaches: { agent: string; eventId: number; held: number; limit: number }[];
  /** End events whose attempt is not the one the audit believes is held. */
  attemptMismatches: { taskId: string; eventId: number; event: string; expected: number | null; got: number | null }[];
  /** Highest number of tasks any one agent held at once. */
  peakHeld: number;
  /** Agents that reached their limit at some point (shows the limit was actually exercised). */
  agentsAtLimit: number;
}

/**
 * Replays dispatch_task_events in id order and checks the two safety rules: a task is never held
 * by two attempts at once, and an agent never holds more than its limit (the limit in force when
 * each task was assigned).
 *
 * Why id order is a sound witness: an event's id is drawn inside its transaction. An assigner
 * that counted on a slot freed by a completion saw that completion committed, so the completion's
 * id is lower than the assignment's. A correct broker therefore never shows a breach in id order,
 * while a broker that overfills an agent does (its assignment ids come after the earlier ones it
 * failed to count).
 */
export async function auditAssignments(db: Db, defaultLimit: number): Promise<AuditReport> {
  const limits = new Map<string, number>();
  const agents = await sql<{ name: string; max_concurrent: number | null }>`SELECT name, max_concurrent FROM dispatch_agents`.execute(db);
  for (const a of agents.rows) limits.set(a.name, a.max_concurrent ?? defaultLimit);

  // The limit in force at an assignment is on its event: the placement record keeps the winner's
  // max_concurrent as read under its row lock in the assigning transaction. Limits change during
  // a run (re-registration, a persona edited in PromptForge), so the table's value at the end is
  // only the fallback, for events written without a placement.
  const { rows } = await sql<{ id: number; task_id: string; event: string; agent_id: string | null; attempt: number | null; limit_then: number | null }>`
    SELECT id, task_id, event, agent_id, attempt,
           (SELECT (c ->> 'max_concurrent')::int FROM jsonb_array_elements(placement -> 'candidates') c
             WHERE c ->> 'outcome' = 'won' AND c ->> 'agent' = agent_id LIMIT 1) AS limit_then
      FROM dispatch_task_events
     WHERE event = 'assigned' OR event = ANY (${[...ATTEMPT_ENDS]}::text[])
     ORDER BY id`.execute(db);

  const holder = new Map<string, { agent: string; attempt: number | null }>();
  const held = new Map<string, number>();
  const reachedLimit = new Set<string>();
  const report: AuditReport = {
    events: rows.length,
    assignments: 0,
    doubleAssignments: [],
    limitBreaches: [],
    attemptMismatches: [],
    peakHeld: 0,
    agentsAtLimit: 0,
  };
  for (const e of rows) {
    const current = holder.get(e.task_id);
    if (e.event === 'assigned') {
      report.assignments++;
      const agent = e.agent_id ?? '(none)';
      if (current) report.doubleAssignments.push({ taskId: e.task_id, eventId: e.id, holder: current.agent, newAgent: agent });
      holder.set(e.task_id, { agent, attempt: e.attempt });
      const count = (held.get(agent) ?? 0) + 1;
      held.set(agent, count);
      const limit = e.limit_then ?? limits.get(agent) ?? defaultLimit;
      if (count > limit) report.limitBreaches.push({ agent, eventId: e.id, held: count, limit });
      if (count >= limit) reachedLimit.add(agent);
      report.peakHeld = Math.max(report.peakHeld, count);
      continue;
    }
    // An end event for a task nobody holds (e.g. cancelling a pending task) frees nothing.
    if (!current) continue;
    if (e.attempt !== null && current.attempt !== null && e.attempt !== current.attempt) {
      report.attemptMismatches.push({ taskId: e.task_id, eventId: e.id, event: e.event, expected: current.attempt, got: e.attempt });
    }
    holder.delete(e.task_id);
    held.set(current.agent, (held.get(current.agent) ?? 1) - 1);
  }
  report.agentsAtLimit = reachedLimit.size;
  return report;
}

export interface ScopeAuditReport {
  assignments: number;
  /** Moments a scope had more tasks assigned or running than its max_running in force. */
  runningBreaches: { scope: string; eventId: number; running: number; limit: number }[];
  /** Assignments that made more than max_starts_per_minute starts within 60 s. */
  startBreaches: { scope: string; eventId: number; starts: number; limit: number }[];
  /** Assignments made while the scope was paused. */
  pausedAssignments: { scope: string; eventId: number }[];
  /** Highest number of tasks of each scope assigned or running at once. */
  peakRunning: Record<string, number>;
  /** Most starts of each rate-limited scope seen within any 60 s. */
  peakStarts: Record<string, number>;
}

interface ScopeLimits {
  paused: boolean;
  maxRunning: number | null;
  maxStarts: number | null;
}

/**
 * Replays the task events and the scope events (dispatch_scope_events, migration 0011) in id
 * order and checks the scope controls: never more of a scope assigned or running than the
 * max_running in force, never more starts in 60 s than the max_starts_per_minute in force, no
 * assignment while paused. The limit in force at each assignment is the one set by the last
 * scope event before it in id order: a change takes the scope gate exclusively before drawing
 * its id, so no batch that read the old controls draws an id after it (see auditAssignments
 * for why id order is a sound witness for the counts).
 *
 * Starts are counted from when the rate limit was set (the broker counts only then); an
 * assignment's window holds every earlier assignment (by id) stamped less than 60 s before it,
 * including ones stamped later (a batch's stamp is its transaction's start).
 */
export async function auditScopeLimits(db: Db): Promise<ScopeAuditReport> {
  const { rows } = await sql<{ id: number; kind: 'task' | 'scope'; task_id: string | null; scope: string; event: string; at: Date; payload: Record<string, unknown> | null }>`
    SELECT e.id, 'task' AS kind, e.task_id, t.scope, e.event, e.created_at AS at, NULL::jsonb AS payload
      FROM dispatch_task_events e JOIN dispatch_tasks t ON t.id = e.task_id
     WHERE e.event = 'assigned' OR e.event = ANY (${[...ATTEMPT_ENDS]}::text[])
    UNION ALL
    SELECT id, 'scope', NULL, scope, event, created_at, payload FROM dispatch_scope_events
     ORDER BY id`.execute(db);
  const limits = new Map<string, ScopeLimits>();
  const held = new Set<string>();
  const running = new Map<string, number>();
  const starts = new Map<string, number[]>();
  const report: ScopeAuditReport = { assignments: 0, runningBreaches: [], startBreaches: [], pausedAssignments: [], peakRunning: {}, peakStarts: {} };
  for (const e of rows) {
    if (e.kind === 'scope') {
      const before = limits.get(e.scope);
      const after = { paused: e.payload!.paused === true, maxRunning: (e.payload!.max_running as number | null) ?? null, maxStarts: (e.payload!.max_starts_per_minute as number | null) ?? null };
      if (after.maxStarts === null || (before?.maxStarts ?? null) === null) starts.set(e.scope, []);
      limits.set(e.scope, after);
      continue;
    }
    const scopeLimits = limits.get(e.scope);
    if (e.event === 'assigned') {
      report.assignments++;
      held.add(e.task_id!);
      const count = (running.get(e.scope) ?? 0) + 1;
      running.set(e.scope, count);
      report.peakRunning[e.scope] = Math.max(report.peakRunning[e.scope] ?? 0, count);
      if (scopeLimits?.paused) report.pausedAssignments.push({ scope: e.scope, eventId: e.id });
      if (scopeLimits?.maxRunning != null && count > scopeLimits.maxRunning) {
        report.runningBreaches.push({ scope: e.scope, eventId: e.id, running: count, limit: scopeLimits.maxRunning });
      }
      if (scopeLimits?.maxStarts != null) {
        const window = starts.get(e.scope) ?? [];
        window.push(e.at.getTime());
        starts.set(e.scope, window);
        const inWindow = window.filter((t) => t > e.at.getTime() - 60_000).length;
        report.peakStarts[e.scope] = Math.max(report.peakStarts[e.scope] ?? 0, inWindow);
        if (inWindow > scopeLimits.maxStarts) report.startBreaches.push({ scope: e.scope, eventId: e.id, starts: inWindow, limit: scopeLimits.maxStarts });
      }
      continue;
    }
    if (!held.delete(e.task_id!)) continue;
    running.set(e.scope, (running.get(e.scope) ?? 1) - 1);
  }
  return report;
}
