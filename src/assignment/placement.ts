import type { Db } from '../db/database.js';
import type { TaskRow } from '../db/database.js';
import { scopeWaitReason } from '../scopes/scope-limits.js';
import { readScopeControls, readScopeUsage } from '../scopes/scope.queries.js';
import { lastPlacement, readAllAgents } from './assignment.queries.js';
import { effectivePriority } from './aging.js';
import { decidePlacement } from './scoring.js';

export interface PlacementSettings {
  defaultMaxConcurrent: number;
  /** assignment.aging_ms: one level of priority gained per this much waiting (0: none). */
  agingMs: number;
}

/** Why a pending task waits for a time rather than for an agent, if it does. */
function waitingForTime(task: TaskRow, now: Date): string | null {
  if (!task.not_before || task.not_before <= now) return null;
  const why = task.run_at && task.attempt === 0 && task.not_before.getTime() === task.run_at.getTime() ? 'run_at' : 'retry backoff';
  return `waiting until ${task.not_before.toISOString()} (${why})`;
}

/**
 * Why a task is where it is. A placed task shows the decision recorded when it was placed; a
 * pending one is evaluated now against the live directory and says why it is still waiting.
 */
export async function explainPlacement(db: Db, task: TaskRow, settings: PlacementSettings, now = new Date()) {
  const lastDecision = await lastPlacement(db, task.id);
  if (task.status === 'waiting') {
    const reason = `waiting for ${task.waiting_on} ${task.waiting_on === 1 ? 'dependency' : 'dependencies'} to end (GET /api/v1/tasks/${task.id} lists them)`;
    return { task_id: task.id, status: task.status, assignee: task.assignee, attempt: task.attempt, waiting_because: [reason], decision: lastDecision };
  }
  if (task.status !== 'pending') {
    return { task_id: task.id, status: task.status, assignee: task.assignee, attempt: task.attempt, decision: lastDecision };
  }
  const agents = await readAllAgents(db, settings.defaultMaxConcurrent);
  const capable = agents.filter((a) => a.capabilities.includes(task.scope));
  const decision = decidePlacement({ scope: task.scope, priority: task.priority, avoidAgent: task.avoid_agent }, capable, now);
  const waiting: string[] = [];
  // The scope's pause and limits (migration 0011), read unlocked: what the next batch would see.
  const [scopeState] = await readScopeUsage(db, await readScopeControls(db, task.scope));
  const held = scopeState && scopeWaitReason(scopeState);
  if (held) waiting.push(held);
  const untilTime = waitingForTime(task, now);
  if (untilTime) waiting.push(untilTime);
  if (capable.length === 0) waiting.push(`no agent has the capability "${task.scope}"`);
  else if (!decision.winner) waiting.push('every capable agent is drained, stopped, unhealthy or at its limit');
  else if (waiting.length === 0) waiting.push(`eligible now: ${decision.winner.name} would win; it is queued behind more urgent or older tasks`);
  if (task.start_by) waiting.push(`expires (ends timeout, reason expired) if not assigned by ${task.start_by.toISOString()}`);
  return {
    task_id: task.id,
    status: task.status,
    priority: task.priority,
    // Aging counts from when the task became ready; a delayed task has not aged before its run_at.
    effective_priority: effectivePriority(task.priority, task.run_at ?? task.created_at, now, settings.agingMs),
    waiting_because: waiting,
    unmatched_at: task.unmatched_at?.toISOString() ?? null,
    candidates: decision.candidates,
    without_capability: agents.length - capable.length,
    last_decision: lastDecision,
  };
}

type Explanation = Awaited<ReturnType<typeof explainPlacement>>;

/** Keeps only `agent`'s own entry in a list of candidates; the rest are counted, not named. */
function ownCandidates<T extends { agent: string }>(candidates: T[], agent: string) {
  return { candidates: candidates.filter((c) => c.agent === agent), other_candidates: candidates.filter((c) => c.agent !== agent).length };
}

/**
 * The explanation as a caller who is not an observer or admin may see it: other agents' names,
 * states and loads are the swarm's business, not a requester's or a worker's.
 */
export function redactPlacement(explanation: Explanation, agent: string): Record<string, unknown> {
  const hideDecision = (decision: unknown) => {
    const recorded = decision as { candidates?: { agent: string }[] } | null;
    return recorded?.candidates ? { ...recorded, ...ownCandidates(recorded.candidates, agent) } : recorded;
  };
  if (!('candidates' in explanation) || !explanation.candidates) return { ...explanation, decision: hideDecision(explanation.decision) };
  return {
    ...explanation,
    ...ownCandidates(explanation.candidates, agent),
    waiting_because: (explanation.waiting_because ?? []).map((reason) => reason.replace(/^eligible now: \S+ would win/, 'eligible now: an agent would win')),
    last_decision: hideDecision(explanation.last_decision),
  };
}
