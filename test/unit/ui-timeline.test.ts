import { describe, expect, it } from 'vitest';
import type { TaskEventRow } from '../../src/db/database.js';
import { holdsOf } from '../../src/ui/timeline.js';

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second));
let id = 0;
const event = (name: string, second: number, agent: string | null = null, attempt: number | null = null) =>
  ({ id: String(++id), event_id: '', task_id: 't', event: name, agent_id: agent, attempt, payload: {}, created_at: at(second), placement: null }) as unknown as TaskEventRow;

describe('holdsOf: who held a task when, from its audit events', () => {
  it('ends a hold at the event that ended the attempt, and leaves the current one open', () => {
    const holds = holdsOf([
      event('created', 0, 'planner'),
      event('assigned', 1, 'coder-1', 1),
      event('started', 2, 'coder-1', 1),
      event('progress', 3, 'coder-1', 1),
      event('timeout', 10, 'coder-1', 1),
      event('assigned', 12, 'coder-2', 2),
      event('reassigned', 15, 'coder-2', 2),
      event('assigned', 16, 'coder-3', 3),
    ]);
    expect(holds).toEqual([
      { agent: 'coder-1', attempt: 1, from: at(1), until: at(10), ended: 'timeout' },
      { agent: 'coder-2', attempt: 2, from: at(12), until: at(15), ended: 'reassigned' },
      { agent: 'coder-3', attempt: 3, from: at(16), until: null, ended: null },
    ]);
  });

  it('is empty for a task nobody took', () => {
    expect(holdsOf([event('created', 0, 'planner'), event('unmatched', 1), event('cancelled', 2, 'admin')])).toEqual([]);
  });
});
