import { describe, expect, it } from 'vitest';
import { parseWarrenStatus, warrenAgentListSchema, warrenAgentSchema } from '../../src/integrations/warren/warren.schemas.js';

describe('parseWarrenStatus', () => {
  it.each([
    ['ready', 'ready'],
    ['sleeping', 'sleeping'],
    ['starting', 'starting'],
    ['busy', 'busy'],
    ['degraded', 'degraded'],
    ['stopped', 'stopped'],
    ['unknown', 'unknown'],
    [' Ready ', 'ready'],
    ['SLEEPING', 'sleeping'],
    ['stopping', 'unknown'],
    ['crashed', 'unknown'],
    ['', 'unknown'],
  ])('%j -> %s', (raw, expected) => {
    expect(parseWarrenStatus(raw)).toBe(expected);
  });
});

describe('warrenAgentListSchema', () => {
  it('parses a bare list, mapping statuses and ignoring extra fields', () => {
    const parsed = warrenAgentListSchema.parse([
      { name: 'alpha', status: 'ready', pid: 12 },
      { name: 'beta', status: 'hibernating' },
      { name: 'gamma', status: null },
      { name: 'delta' },
    ]);
    expect(parsed).toEqual([
      { name: 'alpha', status: 'ready' },
      { name: 'beta', status: 'unknown' },
      { name: 'gamma', status: 'unknown' },
      { name: 'delta', status: 'unknown' },
    ]);
  });

  it('accepts an {agents: [...]} envelope', () => {
    expect(warrenAgentListSchema.parse({ agents: [{ name: 'alpha', status: 'busy' }] })).toEqual([{ name: 'alpha', status: 'busy' }]);
  });

  it.each([
    ['null', null],
    ['a string', 'ready'],
    ['an object without agents', { data: [] }],
    ['an entry without a name', [{ status: 'ready' }]],
    ['an empty name', [{ name: '', status: 'ready' }]],
    ['a name too long for an agent id', [{ name: 'x'.repeat(201), status: 'ready' }]],
    ['a numeric status', [{ name: 'a', status: 3 }]],
  ])('rejects %s', (_label, body) => {
    expect(warrenAgentListSchema.safeParse(body).success).toBe(false);
  });

  it('parses a single agent', () => {
    expect(warrenAgentSchema.parse({ name: 'alpha', status: 'starting' })).toEqual({ name: 'alpha', status: 'starting' });
  });
});
