import { between, weighted } from './random.js';

/** What an agent does with one attempt of a task. */
export type Action = 'complete' | 'fail_retryable' | 'fail_final' | 'hang' | 'stop';
export const ACTIONS: readonly Action[] = ['complete', 'fail_retryable', 'fail_final', 'hang', 'stop'];

export type FaultName = 'sigkill' | 'sigterm' | 'nats' | 'postgres' | 'warren';
export const FAULT_NAMES: readonly FaultName[] = ['sigkill', 'sigterm', 'nats', 'postgres', 'warren'];

export interface FaultSpec {
  name: FaultName;
  /** When the fault starts, in ms after the first task was created. */
  atMs: number;
  /** How long the fault lasts: a replica stays dead, NATS or PostgreSQL stays down, Warren fails. */
  downMs: number;
}

/** Every fault once, in FAULT_NAMES order: [start, duration] in ms for each. */
function everyFault(timings: ReadonlyArray<readonly [atMs: number, downMs: number]>): FaultSpec[] {
  if (timings.length !== FAULT_NAMES.length) throw new Error(`one timing per fault (${FAULT_NAMES.join(', ')})`);
  return FAULT_NAMES.map((name, i) => ({ name, atMs: timings[i]![0], downMs: timings[i]![1] }));
}

/** One run's size and shape. Everything random in it is drawn from `seed`. */
export interface ChaosProfile {
  name: string;
  seed: string;
  replicas: number;
  agents: number;
  tasks: number;
  scopes: string[];
  /** Tasks are created at an even pace over this long, so work and faults overlap. */
  feedMs: number;
  /** Relative weights of what agents do with an attempt. */
  actions: Record<Action, number>;
  /** Per task: timeout_ms is drawn in this range (small, so hung attempts settle quickly). */
  timeoutMs: [number, number];
  /** Per task: max_retries weights for 0, 1, 2. */
  maxRetries: [number, number, number];
  /** Simulated work before a complete or fail, ms. */
  workMs: [number, number];
  /** How long a stopped agent stays stopped in Warren before it is ready again. */
  agentStopMs: number;
  maxConcurrent: number;
  /** Per-agent limit from PromptForge for every n-th agent (exercises per-agent limits). */
  lowLimitEvery: number;
  faults: FaultSpec[];
  /**
   * The swarm's own PostgreSQL runs with autovacuum on, as production does; off leaves the hot
   * queue tables to Dispatch's queue maintenance alone (assignment.vacuum_interval_ms). Ignored
   * when the run is given a database: that server's setting applies.
   */
  autovacuum: boolean;
  /** Hard bound for the whole run (setup, feed, drain, checks); past it the run fails. */
  deadlineMs: number;
}

const SCOPES = ['build', 'deploy', 'review', 'test', 'docs'];

/** Full profile: 3 replicas, 100 agents, 20,000 tasks; faults spread over the feed. */
export function fullProfile(seed = 'dispatch-chaos'): ChaosProfile {
  return {
    name: 'full',
    seed,
    replicas: 3,
    agents: 100,
    tasks: 20_000,
    scopes: SCOPES,
    feedMs: 240_000,
    actions: { complete: 70, fail_retryable: 12, fail_final: 5, hang: 11, stop: 2 },
    timeoutMs: [1_500, 3_500],
    maxRetries: [2, 5, 3],
    workMs: [5, 60],
    agentStopMs: 3_000,
    maxConcurrent: 3,
    lowLimitEvery: 5,
    faults: everyFault([
      [20_000, 3_000],
      [55_000, 3_000],
      [90_000, 20_000],
      [135_000, 3_000],
      [170_000, 10_000],
    ]),
    autovacuum: true,
    deadlineMs: 20 * 60_000,
  };
}

/** Short profile for CI: same faults, shorter, fewer agents and tasks; well under 5 minutes. */
export function shortProfile(seed = 'dispatch-chaos'): ChaosProfile {
  return {
    ...fullProfile(seed),
    name: 'short',
    agents: 30,
    tasks: 2_000,
    feedMs: 60_000,
    faults: everyFault([
      [6_000, 2_000],
      [16_000, 2_000],
      [26_000, 5_000],
      [36_000, 2_000],
      [46_000, 10_000],
    ]),
    deadlineMs: 4 * 60_000,
  };
}

/** What a task looks like: drawn from the seed and its index. */
export interface TaskSpec {
  index: number;
  scope: string;
  priority: number;
  timeoutMs: number;
  maxRetries: number;
}

export function taskSpec(profile: ChaosProfile, index: number): TaskSpec {
  const { seed } = profile;
  return {
    index,
    scope: profile.scopes[between(0, profile.scopes.length - 1, seed, 'scope', index)]!,
    priority: between(1, 5, seed, 'priority', index),
    timeoutMs: between(profile.timeoutMs[0], profile.timeoutMs[1], seed, 'timeout', index),
    maxRetries: Number(weighted({ 0: profile.maxRetries[0], 1: profile.maxRetries[1], 2: profile.maxRetries[2] }, seed, 'retries', index)),
  };
}

/** The plan: what the agent holding attempt `attempt` of task `index` does. */
export function plannedAction(profile: ChaosProfile, index: number, attempt: number): Action {
  return weighted(profile.actions, profile.seed, 'action', index, attempt);
}

export function workMs(profile: ChaosProfile, index: number, attempt: number): number {
  return between(profile.workMs[0], profile.workMs[1], profile.seed, 'work', index, attempt);
}

/** Agent names and their capabilities (two or three scopes each, every scope well covered). */
export interface AgentSpec {
  name: string;
  capabilities: string[];
  /** Set for every `lowLimitEvery`-th agent (a per-persona limit below the default). */
  maxConcurrent?: number;
}

export function agentSpecs(profile: ChaosProfile): AgentSpec[] {
  const n = profile.scopes.length;
  return Array.from({ length: profile.agents }, (_, i) => {
    const extra = between(0, 1, profile.seed, 'caps', i);
    const capabilities = [profile.scopes[i % n]!, profile.scopes[(i + 1) % n]!, ...(extra ? [profile.scopes[(i + 3) % n]!] : [])];
    const low = profile.lowLimitEvery > 0 && i % profile.lowLimitEvery === profile.lowLimitEvery - 1;
    return {
      name: `chaos-agent-${String(i).padStart(3, '0')}`,
      capabilities: [...new Set(capabilities)],
      ...(low ? { maxConcurrent: Math.max(1, profile.maxConcurrent - 1) } : {}),
    };
  });
}

/**
 * A small run around one fault, for the focused tests (test/integration/chaos.*.test.ts): two
 * replicas, ten agents, a few hundred tasks fed over `feedMs`, the fault `atMs` into the feed.
 */
export function focusedProfile(fault: FaultName, options: { atMs?: number; downMs?: number; tasks?: number; feedMs?: number } = {}): ChaosProfile {
  return {
    ...shortProfile(`focused-${fault}`),
    name: `focused-${fault}`,
    replicas: 2,
    agents: 10,
    tasks: options.tasks ?? 240,
    feedMs: options.feedMs ?? 9_000,
    faults: [{ name: fault, atMs: options.atMs ?? 3_000, downMs: options.downMs ?? 2_000 }],
    deadlineMs: 55_000,
  };
}

/** A run with no fault at all (the checks' baseline). */
export function calmProfile(): ChaosProfile {
  return { ...focusedProfile('warren'), name: 'calm', faults: [] };
}
