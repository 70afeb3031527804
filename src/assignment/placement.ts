import type { Db } from '../db/database.js';
import type { TaskRow } from '../db/database.js';
import { lastPlacement, readAllAgents } from './assignment.queries.js';
import { decidePlacement } from './scoring.js';

/**
 * Why a task is where it is. A placed task shows the decision recorded when it was placed; a
 * pending one is evaluated now against the live directory and says why it is still waiting.
 */
export async function explainPlacement(db: Db, task: TaskRow, defaultMaxConcurrent: number, now = new Date()) {
  const lastDecision = await lastPlacement(db, task.id);
  if (task.status !== 'pending') {
    return { task_id: task.id, status: task.status, assignee: task.assignee, attempt: task.attempt, decision: lastDecision };
  }
  const agents = await readAllAgents(db, defaultMaxConcurrent);
  const capable = agents.filter((a) => a.capabilities.includes(task.scope));
  const decision = decidePlacement({ scope: task.scope, priority: task.priority, avoidAgent: task.avoid_agent }, capable, now);
  const waiting: string[] = [];
  if (task.not_before && task.not_before > now) waiting.push(`retry backoff until ${task.not_before.toISOString()}`);
  if (capable.length === 0) waiting.push(`no agent has the capability "${task.scope}"`);
  else if (!decision.winner) waiting.push('every capable agent is drained, stopped, unhealthy or at its limit');
  else if (waiting.length === 0) waiting.push(`eligible now: ${decision.winner.name} would win; it is queued behind more urgent or older tasks`);
  return {
    task_id: task.id,
    status: task.status,
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
