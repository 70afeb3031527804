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
 * Orders two agents eligible for one task: higher score first (for one task the priority weight is
 * the same for every agent, so the availability decides); then fewer active tasks; then the one
 * assigned least recently (never assigned counts as longest ago); then by name, so the order is
 * total.
 */
export function compareCandidates(a: AgentSnapshot, b: AgentSnapshot): number {
  const byAvailability = AVAILABILITY[b.status] - AVAILABILITY[a.status];
  if (byAvailability !== 0) return byAvailability;
  if (a.activeTasks !== b.activeTasks) return a.activeTasks - b.activeTasks;
  const aTime = a.lastAssignedAt?.getTime() ?? -Infinity;
  const bTime = b.lastAssignedAt?.getTime() ?? -Infinity;
  if (aTime !== bTime) return aTime - bTime;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
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
 * The `count` first of `items` in `compare` order, sorted: a bounded insertion (count x items
 * comparisons) instead of sorting them all; `items` is left as it is.
 */
export function firstInOrder<T>(items: readonly T[], count: number, compare: (a: T, b: T) => number): T[] {
  if (count >= items.length) return [...items].sort(compare);
  const top: T[] = [];
  if (count <= 0) return top;
  for (const item of items) {
    if (top.length === count) {
      if (compare(item, top[count - 1]!) >= 0) continue;
      top.pop();
    }
    let at = top.length;
    while (at > 0 && compare(item, top[at - 1]!) < 0) at -= 1;
    top.splice(at, 0, item);
  }
  return top;
}

function verdict(agent: AgentSnapshot, score: number, outcome: Outcome): CandidateVerdict {
  return { agent: agent.name, score, status: agent.status, active_tasks: agent.activeTasks, max_concurrent: agent.maxConcurrent, outcome };
}

/**
 * Picks the agent for one task and says why every capable agent won or lost. The agent that
 * last failed the task is passed over when any other eligible agent exists. `listed` caps the
 * verdicts built (an assignment batch records a few per task); the counts cover every agent.
 *
 * An assignment batch runs this for every task it places, over every free agent: it allocates
 * nothing per agent beyond the eligible list (at 1,000 tasks/s over 50 agents, wrapping each with
 * its score and sorting copies came to a tenth of everything the replica allocated).
 */
export function decidePlacement(task: TaskToPlace, agents: readonly AgentSnapshot[], now: Date, listed = Infinity): PlacementDecision {
  const eligible: AgentSnapshot[] = [];
  const filtered: { agent: AgentSnapshot; exclusion: Exclusion }[] = [];
  let withoutCapability = 0;
  for (const agent of agents) {
    const exclusion = exclusionOf(agent, task, now);
    if (exclusion === 'no_capability') withoutCapability += 1;
    else if (exclusion !== null) filtered.push({ agent, exclusion });
    else eligible.push(agent);
  }
  const weight = priorityWeight(task.priority);
  const scoreOf = (agent: AgentSnapshot) => AVAILABILITY[agent.status] * weight;
  // Only the verdicts listed need the order, and the winner is first or (when the first is the
  // avoided agent) second: a batch lists 3 of hundreds of agents, for every task it places.
  const first = firstInOrder(eligible, Math.max(listed, 2), compareCandidates);
  const best = first.find((agent) => agent.name !== task.avoidAgent) ?? first[0];
  const avoiding = best !== undefined && best.name !== task.avoidAgent;
  const bestScore = best === undefined ? 0 : scoreOf(best);
  const outcomeOf = (agent: AgentSnapshot): Outcome =>
    agent === best ? 'won' : avoiding && agent.name === task.avoidAgent ? 'avoided' : scoreOf(agent) === bestScore ? 'tie_break' : 'lower_score';
  const candidates: CandidateVerdict[] = [];
  const outcomes: Partial<Record<Outcome, number>> = {};
  const record = (agent: AgentSnapshot, score: number, outcome: Outcome) => {
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    if (candidates.length < listed) candidates.push(verdict(agent, score, outcome));
  };
  for (const agent of first) record(agent, scoreOf(agent), outcomeOf(agent));
  // The rest are counted, not listed (the list is full: `first` holds more than `listed`).
  if (first.length < eligible.length) {
    for (const agent of eligible) if (!first.includes(agent)) record(agent, 0, outcomeOf(agent));
  }
  for (const f of filtered) record(f.agent, 0, f.exclusion);
  return { winner: best ?? null, score: bestScore, candidates, considered: eligible.length + filtered.length, outcomes, withoutCapability };
}
