import { describe, expect, it } from 'vitest';
import {
  parseCapabilities,
  parseMaxConcurrent,
  personaListSchema,
  personaSchema,
} from '../../src/integrations/promptforge/promptforge.schemas.js';

describe('parseCapabilities', () => {
  it.each([
    ['code-review, Testing ,DOCS', ['code-review', 'docs', 'testing']],
    ['', []],
    [' , ,, ', []],
    ['single', ['single']],
    ['dup, DUP, dup ', ['dup']],
    ['a,\nb\t,c', ['a', 'b', 'c']],
    [`ok, ${'x'.repeat(201)}`, ['ok']],
  ])('%j -> %j', (content, expected) => {
    expect(parseCapabilities(content)).toEqual(expected);
  });
});

describe('parseMaxConcurrent', () => {
  it.each([
    ['5', 5],
    [' 12 ', 12],
    ['1', 1],
    ['0', null],
    ['-2', null],
    ['2.5', null],
    ['three', null],
    ['', null],
    ['10000', 10_000],
    ['10001', null],
    ['99999999999999', null],
  ])('%j -> %j', (content, expected) => {
    expect(parseMaxConcurrent(content)).toBe(expected);
  });
});

describe('personaSchema', () => {
  it('takes the capabilities and max_concurrent sections', () => {
    const persona = personaSchema.parse({
      id: 'p1',
      name: 'reviewer',
      sections: [
        { id: 'system_prompt', content: 'You review code.' },
        { id: 'capabilities', content: 'Code-Review, go' },
        { id: 'max_concurrent', content: '2' },
      ],
      owner: 'someone',
    });
    expect(persona).toEqual({ id: 'p1', name: 'reviewer', capabilities: ['code-review', 'go'], maxConcurrent: 2 });
  });

  it('treats missing sections as no capabilities and the default limit', () => {
    expect(personaSchema.parse({ id: 7, name: 'idle' })).toEqual({ id: '7', name: 'idle', capabilities: [], maxConcurrent: null });
    expect(personaSchema.parse({ id: 'x', name: 'n', sections: [{ id: 'capabilities', content: null }] }).capabilities).toEqual([]);
  });

  it('ignores an unusable max_concurrent instead of rejecting the persona', () => {
    const persona = personaSchema.parse({
      id: 'p',
      name: 'n',
      sections: [
        { id: 'capabilities', content: 'a' },
        { id: 'max_concurrent', content: 'lots' },
      ],
    });
    expect(persona.maxConcurrent).toBeNull();
  });

  it.each([
    ['no name', { id: 'p', sections: [] }],
    ['an empty name', { id: 'p', name: '', sections: [] }],
    ['sections that are not a list', { id: 'p', name: 'n', sections: 'capabilities=a' }],
    ['a section without an id', { id: 'p', name: 'n', sections: [{ content: 'a' }] }],
    ['a numeric content', { id: 'p', name: 'n', sections: [{ id: 'capabilities', content: 5 }] }],
  ])('rejects %s', (_label, body) => {
    expect(personaSchema.safeParse(body).success).toBe(false);
  });
});

describe('personaListSchema', () => {
  it('accepts a list and a {personas: [...]} envelope', () => {
    const persona = { id: 'p', name: 'n', sections: [{ id: 'capabilities', content: 'a' }] };
    expect(personaListSchema.parse([persona])).toHaveLength(1);
    expect(personaListSchema.parse({ personas: [persona] })).toHaveLength(1);
  });

  it('rejects anything else', () => {
    expect(personaListSchema.safeParse({ data: [] }).success).toBe(false);
    expect(personaListSchema.safeParse('[]').success).toBe(false);
    expect(personaListSchema.safeParse(null).success).toBe(false);
  });
});
