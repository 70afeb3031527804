import { describe, expect, it } from 'vitest';
import { newId, uuidV7Generator } from '../../src/db/ids.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** The Unix milliseconds in an id's first 48 bits. */
const timeOf = (id: string) => parseInt(id.replace(/-/g, '').slice(0, 12), 16);

/** Ids in the order made must sort the same way (PostgreSQL compares uuids byte by byte, as lowercase hex sorts). */
function expectIncreasing(ids: string[]) {
  for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!, `${ids[i - 1]} then ${ids[i]}`).toBe(true);
}

describe('row ids (UUID version 7)', () => {
  it('are version 7, variant 10, and carry the time they were made', () => {
    const before = Date.now();
    const ids = Array.from({ length: 5_000 }, () => newId());
    const after = Date.now();
    for (const id of ids) {
      expect(id).toMatch(V7);
      expect(timeOf(id)).toBeGreaterThanOrEqual(before);
      expect(timeOf(id)).toBeLessThanOrEqual(after);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('increase in the order made, within a millisecond and across the pool refills', () => {
    const next = uuidV7Generator(() => 1_764_000_000_000);
    const ids = Array.from({ length: 2_000 }, () => next());
    expectIncreasing(ids);
    expect(new Set(ids.map(timeOf))).toEqual(new Set([1_764_000_000_000]));
  });

  it('keep increasing when the clock steps back, without going back in time', () => {
    let clock = 1_764_000_000_500;
    const next = uuidV7Generator(() => clock);
    const ids = [next(), next()];
    clock -= 400;
    ids.push(next(), next());
    clock += 1_000;
    ids.push(next());
    expectIncreasing(ids);
    expect(ids.map(timeOf)).toEqual([1_764_000_000_500, 1_764_000_000_500, 1_764_000_000_500, 1_764_000_000_500, 1_764_000_001_100]);
  });

  it('differ between generators made in the same millisecond', () => {
    const clock = () => 1_764_000_000_000;
    const [a, b] = [uuidV7Generator(clock), uuidV7Generator(clock)];
    const ids = new Set(Array.from({ length: 1_000 }, () => [a(), b()]).flat());
    expect(ids.size).toBe(2_000);
  });
});
