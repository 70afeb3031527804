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
