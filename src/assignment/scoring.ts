import type { AgentStatus } from '../db/columns.js';

/** What placement needs to know about an agent at the moment of the decision. */
export interface AgentSnapshot {
  name: string;
  capabilities: readonly string[];
  status: AgentStatus;
  drained: boolean;
  activeTasks: number;
  /** Effective limit: the agent's own max_concurrent, else the configured default. */
  maxConcurrent: number;
  lastAssignedAt: Date | null;
  /** A failed wake puts the agent on a cooldown until this instant. */
  avoidUntil: Date | null;
  /**
   * Read without its row lock: the batch deciding did not lock it because it was not free then,
   * or because it is another batch's share of a backlog (Assigner.drainSideBySide). Such an agent
   * explains a decision but never wins one, since another batch may be filling it.
   */
  unlocked?: boolean;
}

export interface TaskToPlace {
  scope: string;
  priority: number;
  /** The agent that last failed or timed out this task; another one is preferred. */
  avoidAgent: string | null;
}

/** Why an agent cannot take a task (or `null` when it can). */
export type Exclusion =
  | 'no_capability'
  | 'drained'
  | 'stopped'
  | 'degraded'
  | 'unknown'
  | 'starting'
  | 'at_limit'
  | 'cooling_down'
  | 'not_free_at_lock';

/** v1's availability weights; busy counts only while under the limit (checked by `exclusionOf`). */
export const AVAILABILITY: Record<AgentStatus, number> = {
  ready: 1.0,
  sleeping: 0.8,
  busy: 0.5,
  starting: 0,
  degraded: 0,
  stopped: 0,
  unknown: 0,
};

/** 1 + (5 - priority) x 0.1: urgent tasks outscore others on the same agent, as in v1. */
export function priorityWeight(priority: number): number {
  return 1 + (5 - priority) * 0.1;
}

export function hasCapability(agent: AgentSnapshot, scope: string): boolean {
  return agent.capabilities.includes(scope.toLowerCase());
}

/** The first rule that rules the agent out for this task, in the order an operator would ask. */
export function exclusionOf(agent: AgentSnapshot, task: TaskToPlace, now: Date): Exclusion | null {
  if (!hasCapability(agent, task.scope)) return 'no_capability';
  if (agent.drained) return 'drained';
  if (agent.status === 'stopped' || agent.status === 'degraded' || agent.status === 'unknown' || agent.status === 'starting') {
    return agent.status;
  }
  if (agent.activeTasks >= agent.maxConcurrent) return 'at_limit';
  if (agent.avoidUntil && agent.avoidUntil > now) return 'cooling_down';
  if (agent.unlocked) return 'not_free_at_lock';
  return null;
}

/** capability match x availability x priority weight; 0 for an agent that is ruled out. */
export function scoreAgent(agent: AgentSnapshot, task: TaskToPlace, now: Date): number {
  if (exclusionOf(agent, task, now) !== null) return 0;
  return AVAILABILITY[agent.status] * priorityWeight(task.priority);
}

/**
 * Orders two eligible agents: higher score first; then fewer active tasks; then the one assigned
 * least recently (never assigned counts as longest ago); then by name, so the order is total.
 */
export function compareCandidates(a: { agent: AgentSnapshot; score: number }, b: { agent: AgentSnapshot; score: number }): number {
  if (a.score !== b.score) return b.score - a.score;
  if (a.agent.activeTasks !== b.agent.activeTasks) return a.agent.activeTasks - b.agent.activeTasks;
  const aTime = a.agent.lastAssignedAt?.getTime() ?? -Infinity;
  const bTime = b.agent.lastAssignedAt?.getTime() ?? -Infinity;
  if (aTime !== bTime) return aTime - bTime;
  return a.agent.name < b.agent.name ? -1 : a.agent.name > b.agent.name ? 1 : 0;
}

export interface CandidateVerdict {
  agent: string;
  score: number;
  status: AgentStatus;
  active_tasks: number;
  max_concurrent: number;
  /** won, lower_score, tie_break (same score, lost on load or recency), avoided (failed it last), or why it was filtered. */
  outcome: 'won' | 'lower_score' | 'tie_break' | 'avoided' | Exclusion;
}

export type Outcome = CandidateVerdict['outcome'];

export interface PlacementDecision {
  winner: AgentSnapshot | null;
  score: number;
  /** Capable agents with their scores and why they did not win, winner first: all of them, or the first `listed`. */
  candidates: CandidateVerdict[];
  /** How many capable agents were weighed, listed or not. */
  considered: number;
  /** How many of the capable agents had each outcome, listed or not. */
  outcomes: Partial<Record<Outcome, number>>;
  /** How many agents lacked the capability (not listed one by one). */
  withoutCapability: number;
}

/**
 * The `count` first items in `compare` order, sorted, then the others in no particular order:
 * a bounded insertion (count x items comparisons) instead of sorting them all.
 */
export function bestFirst<T>(items: T[], count: number, compare: (a: T, b: T) => number): T[] {
  if (count >= items.length) return items.sort(compare);
  if (count <= 0) return items;
  const top: T[] = [];
  const rest: T[] = [];
  for (const item of items) {
    if (top.length === count) {
      if (compare(item, top[count - 1]!) >= 0) {
        rest.push(item);
        continue;
      }
      rest.push(top.pop()!);
    }
    let at = top.length;
    while (at > 0 && compare(item, top[at - 1]!) < 0) at -= 1;
    top.splice(at, 0, item);
  }
  return top.concat(rest);
}

function verdict(agent: AgentSnapshot, score: number, outcome: Outcome): CandidateVerdict {
  return { agent: agent.name, score, status: agent.status, active_tasks: agent.activeTasks, max_concurrent: agent.maxConcurrent, outcome };
}

/**
 * Picks the agent for one task and says why every capable agent won or lost. The agent that
 * last failed the task is passed over when any other eligible agent exists. `listed` caps the
 * verdicts built (an assignment batch records a few per task); the counts cover every agent.
 */
export function decidePlacement(task: TaskToPlace, agents: readonly AgentSnapshot[], now: Date, listed = Infinity): PlacementDecision {
  const eligible: { agent: AgentSnapshot; score: number }[] = [];
  const filtered: { agent: AgentSnapshot; exclusion: Exclusion }[] = [];
  let withoutCapability = 0;
  for (const agent of agents) {
    const exclusion = exclusionOf(agent, task, now);
    if (exclusion === 'no_capability') withoutCapability += 1;
    else if (exclusion !== null) filtered.push({ agent, exclusion });
    else eligible.push({ agent, score: scoreAgent(agent, task, now) });
  }
  // Only the verdicts listed need the order, and the winner is first or (when the first is the
  // avoided agent) second: a batch lists 3 of hundreds of agents, for every task it places.
  const ordered = bestFirst(eligible, Math.max(listed, 2), compareCandidates);
  const preferred = ordered.find((c) => c.agent.name !== task.avoidAgent);
  const best = preferred ?? ordered[0];
  const candidates: CandidateVerdict[] = [];
  const outcomes: Partial<Record<Outcome, number>> = {};
  const record = (agent: AgentSnapshot, score: number, outcome: Outcome) => {
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    if (candidates.length < listed) candidates.push(verdict(agent, score, outcome));
  };
  for (const c of ordered) {
    if (c === best) record(c.agent, c.score, 'won');
    else if (preferred && c.agent.name === task.avoidAgent) record(c.agent, c.score, 'avoided');
    else record(c.agent, c.score, best && c.score === best.score ? 'tie_break' : 'lower_score');
  }
  for (const f of filtered) record(f.agent, 0, f.exclusion);
  return { winner: best?.agent ?? null, score: best?.score ?? 0, candidates, considered: eligible.length + filtered.length, outcomes, withoutCapability };
}
