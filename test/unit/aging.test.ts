import { describe, expect, it } from 'vitest';
import { agingBoundMs, effectivePriority, MOST_URGENT_PRIORITY } from '../../src/assignment/aging.js';

const ready = new Date('2026-01-01T00:00:00Z');
const after = (ms: number) => new Date(ready.getTime() + ms);

describe('effective priority', () => {
  it('rises one level per aging_ms waited and stops at the most urgent', () => {
    expect(MOST_URGENT_PRIORITY).toBe(1);
    expect(effectivePriority(5, ready, after(0), 200)).toBe(5);
    expect(effectivePriority(5, ready, after(199), 200)).toBe(5);
    expect(effectivePriority(5, ready, after(200), 200)).toBe(4);
    expect(effectivePriority(5, ready, after(799), 200)).toBe(2);
    expect(effectivePriority(5, ready, after(800), 200)).toBe(1);
    expect(effectivePriority(5, ready, after(60_000), 200)).toBe(1);
    expect(effectivePriority(1, ready, after(60_000), 200)).toBe(1);
  });

  it('does not age a task before it is ready, nor at all with aging_ms 0', () => {
    expect(effectivePriority(3, ready, after(-10_000), 200)).toBe(3);
    expect(effectivePriority(4, ready, after(3_600_000), 0)).toBe(4);
  });

  it('bounds the wait of a task behind the most urgent ones by (priority - 1) x aging_ms', () => {
    expect(agingBoundMs(5, 200)).toBe(800);
    expect(agingBoundMs(1, 60_000)).toBe(0);
  });
});
