import { describe, expect, it } from 'vitest';
import { desiredAgents } from '../../src/agents/directory-sync.js';

const persona = (name: string, capabilities: string[] = ['a'], maxConcurrent: number | null = null) => ({
  id: name,
  name,
  capabilities,
  maxConcurrent,
});

describe('desiredAgents', () => {
  it('joins personas with Warren states by name', () => {
    const statuses = new Map([
      ['alpha', 'ready' as const],
      ['orphan', 'busy' as const],
    ]);
    expect(desiredAgents([persona('alpha', ['x'], 2), persona('beta')], statuses)).toEqual([
      { name: 'alpha', capabilities: ['x'], maxConcurrent: 2, status: 'ready', seen: true },
      // No Warren entry: unknown, and last_seen_at is not refreshed.
      { name: 'beta', capabilities: ['a'], maxConcurrent: null, status: 'unknown', seen: false },
    ]);
  });

  it('marks everyone unknown without Warren data', () => {
    expect(desiredAgents([persona('alpha')], null)).toEqual([
      { name: 'alpha', capabilities: ['a'], maxConcurrent: null, status: 'unknown', seen: false },
    ]);
  });

  it('keeps one row per name, the last persona winning', () => {
    const result = desiredAgents([persona('alpha', ['old']), persona('alpha', ['new'])], new Map());
    expect(result).toEqual([{ name: 'alpha', capabilities: ['new'], maxConcurrent: null, status: 'unknown', seen: false }]);
  });
});
