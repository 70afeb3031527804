import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareCandidates, firstInOrder, decidePlacement, exclusionOf, priorityWeight, scoreAgent, type AgentSnapshot } from '../../src/assignment/scoring.js';
import { AGENT_STATUSES } from '../../src/db/columns.js';

const now = new Date('2026-11-23T12:00:00Z');

function agent(overrides: Partial<AgentSnapshot> = {}): AgentSnapshot {
  return {
    name: 'a',
    capabilities: ['code'],
    status: 'ready',
    drained: false,
    activeTasks: 0,
    maxConcurrent: 3,
    lastAssignedAt: null,
    avoidUntil: null,
    ...overrides,
  };
}

const task = (priority = 3, scope = 'code', avoidAgent: string | null = null) => ({ scope, priority, avoidAgent });

describe('scoreAgent (v1 formula: capability x availability x priority weight)', () => {
  const cases: [string, Partial<AgentSnapshot>, number, number][] = [
    ['ready', {}, 3, 1.2],
    ['sleeping', { status: 'sleeping' }, 3, 0.8 * 1.2],
    ['busy under its limit', { status: 'busy', activeTasks: 2 }, 3, 0.5 * 1.2],
    ['busy at its limit', { status: 'busy', activeTasks: 3 }, 3, 0],
    ['ready at its limit', { activeTasks: 3 }, 3, 0],
    ['per-agent limit above the default', { activeTasks: 3, maxConcurrent: 5 }, 3, 1.2],
    ['degraded', { status: 'degraded' }, 3, 0],
    ['stopped', { status: 'stopped' }, 3, 0],
    ['unknown', { status: 'unknown' }, 3, 0],
    ['starting', { status: 'starting' }, 3, 0],
    ['drained', { drained: true }, 3, 0],
    ['without the capability', { capabilities: ['docs'] }, 3, 0],
    ['priority 1', {}, 1, 1.4],
    ['priority 5', {}, 5, 1.0],
    ['sleeping, priority 1', { status: 'sleeping' }, 1, 0.8 * 1.4],
    ['cooling down after a failed wake', { avoidUntil: new Date(now.getTime() + 1_000) }, 3, 0],
    ['cooldown over', { avoidUntil: new Date(now.getTime() - 1_000) }, 3, 1.2],
  ];
  it.each(cases)('%s', (_name, overrides, priority, expected) => {
    expect(scoreAgent(agent(overrides), task(priority), now)).toBeCloseTo(expected, 10);
  });

  it('matches the scope case-insensitively', () => {
    expect(scoreAgent(agent({ capabilities: ['code-review'] }), task(3, 'Code-Review'), now)).toBeCloseTo(1.2, 10);
  });
});

describe('exclusionOf names the reason an agent is filtered', () => {
  const cases: [Partial<AgentSnapshot>, string | null][] = [
    [{}, null],
    [{ capabilities: [] }, 'no_capability'],
    [{ drained: true, status: 'stopped' }, 'drained'],
    [{ status: 'stopped' }, 'stopped'],
    [{ status: 'degraded' }, 'degraded'],
    [{ status: 'unknown' }, 'unknown'],
    [{ activeTasks: 3 }, 'at_limit'],
    [{ avoidUntil: new Date(now.getTime() + 1) }, 'cooling_down'],
    [{ unlocked: true }, 'not_free_at_lock'],
    // The reason it was not free when the batch locked, when the newer read still shows one.
    [{ unlocked: true, activeTasks: 3 }, 'at_limit'],
  ];
  it.each(cases)('%j -> %s', (overrides, expected) => {
    expect(exclusionOf(agent(overrides), task(), now)).toBe(expected);
  });
});

describe('priorityWeight', () => {
  it.each([
    [1, 1.4],
    [3, 1.2],
    [5, 1.0],
  ])('priority %i weighs %d', (priority, weight) => expect(priorityWeight(priority)).toBeCloseTo(weight, 10));
});

describe('decidePlacement', () => {
  it('prefers the higher score: ready over sleeping over busy', () => {
    const decision = decidePlacement(task(), [agent({ name: 'busy', status: 'busy' }), agent({ name: 'sleepy', status: 'sleeping' }), agent({ name: 'ready' })], now);
    expect(decision.winner?.name).toBe('ready');
    expect(decision.candidates.map((c) => [c.agent, c.outcome])).toEqual([
      ['ready', 'won'],
      ['sleepy', 'lower_score'],
      ['busy', 'lower_score'],
    ]);
  });

  it('breaks ties by fewer active tasks, then least recently assigned, then name', () => {
    const earlier = new Date(now.getTime() - 60_000);
    const later = new Date(now.getTime() - 1_000);
    expect(decidePlacement(task(), [agent({ name: 'x', activeTasks: 2 }), agent({ name: 'y', activeTasks: 1 })], now).winner?.name).toBe('y');
    expect(decidePlacement(task(), [agent({ name: 'x', lastAssignedAt: later }), agent({ name: 'y', lastAssignedAt: earlier })], now).winner?.name).toBe('y');
    expect(decidePlacement(task(), [agent({ name: 'x', lastAssignedAt: later }), agent({ name: 'y' })], now).winner?.name).toBe('y');
    const named = decidePlacement(task(), [agent({ name: 'b' }), agent({ name: 'a' })], now);
    expect(named.winner?.name).toBe('a');
    expect(named.candidates.find((c) => c.agent === 'b')?.outcome).toBe('tie_break');
  });

  it('passes over the agent that failed the task when another can take it, but uses it when it is the only one', () => {
    const both = [agent({ name: 'failed-it' }), agent({ name: 'other', status: 'busy' })];
    const decision = decidePlacement(task(3, 'code', 'failed-it'), both, now);
    expect(decision.winner?.name).toBe('other');
    expect(decision.candidates.find((c) => c.agent === 'failed-it')?.outcome).toBe('avoided');
    expect(decidePlacement(task(3, 'code', 'failed-it'), [agent({ name: 'failed-it' })], now).winner?.name).toBe('failed-it');
  });

  it('explains every filtered agent and counts those without the capability', () => {
    const decision = decidePlacement(task(), [
      agent({ name: 'drained', drained: true }),
      agent({ name: 'full', activeTasks: 3 }),
      agent({ name: 'sick', status: 'degraded' }),
      agent({ name: 'writer', capabilities: ['docs'] }),
    ], now);
    expect(decision.winner).toBeNull();
    expect(decision.score).toBe(0);
    expect(decision.withoutCapability).toBe(1);
    expect(Object.fromEntries(decision.candidates.map((c) => [c.agent, c.outcome]))).toEqual({ drained: 'drained', full: 'at_limit', sick: 'degraded' });
  });

  it('lists at most `listed` verdicts, winner first, and counts every capable agent by outcome', () => {
    const agents = [
      agent({ name: 'a', activeTasks: 1 }),
      agent({ name: 'b', activeTasks: 2 }),
      agent({ name: 'c', status: 'busy' }),
      agent({ name: 'd', drained: true }),
      agent({ name: 'e', capabilities: ['docs'] }),
    ];
    const decision = decidePlacement(task(), agents, now, 2);
    expect(decision.candidates.map((c) => [c.agent, c.outcome])).toEqual([
      ['a', 'won'],
      ['b', 'tie_break'],
    ]);
    expect(decision.considered).toBe(4);
    expect(decision.outcomes).toEqual({ won: 1, tie_break: 1, lower_score: 1, drained: 1 });
    expect(decision.withoutCapability).toBe(1);
    expect(decidePlacement(task(), agents, now).candidates).toHaveLength(4);
  });

  it('orders candidates totally, so every replica decides the same way', () => {
    const a = agent({ name: 'a' });
    const b = agent({ name: 'b' });
    expect(compareCandidates(a, b)).toBeLessThan(0);
    expect(compareCandidates(b, a)).toBeGreaterThan(0);
    expect(compareCandidates(a, a)).toBe(0);
  });
});

describe('a decision that lists a few candidates', () => {
  // Few distinct values, so scores, loads and last assignments tie often and the name decides.
  const agentsArb = fc
    .array(
      fc.record({
        // Mostly agents that could take the task, so several compete; every status now and then.
        status: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('ready', 'busy', 'sleeping') }, { weight: 1, arbitrary: fc.constantFrom(...AGENT_STATUSES) }),
        activeTasks: fc.integer({ min: 0, max: 3 }),
        maxConcurrent: fc.integer({ min: 1, max: 4 }),
        lastAssignedAt: fc.option(fc.constantFrom(0, 1_000, 2_000).map((ms) => new Date(now.getTime() - ms))),
        capable: fc.constantFrom(true, true, true, false),
        drained: fc.constantFrom(false, false, false, true),
      }),
      { maxLength: 40 },
    )
    .map((rows) =>
      rows.map((row, i) =>
        agent({ ...row, name: `agent-${String((i * 7) % 41).padStart(2, '0')}`, capabilities: row.capable ? ['code'] : ['docs'] }),
      ),
    );

  it('is the full decision with its list cut short: same winner, same first verdicts, same counts', () => {
    fc.assert(
      fc.property(agentsArb, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 6 }), fc.nat(50), (agents, priority, listed, avoid) => {
        const avoidAgent = agents[avoid]?.name ?? null;
        const full = decidePlacement(task(priority, 'code', avoidAgent), agents, now);
        const cut = decidePlacement(task(priority, 'code', avoidAgent), agents, now, listed);
        expect(cut).toEqual({ ...full, candidates: full.candidates.slice(0, listed) });
      }),
      { numRuns: 500 },
    );
  });

  it('orders only the first items it is asked for', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 })), fc.nat(10), (items, count) => {
        const given = [...items];
        const result = firstInOrder(given, count, (a: number, b: number) => a - b);
        expect(result).toEqual([...items].sort((a, b) => a - b).slice(0, count));
        expect(given).toEqual(items);
      }),
    );
  });
});
