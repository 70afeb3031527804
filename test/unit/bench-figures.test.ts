import { describe, expect, it } from 'vitest';
import { recordFigure, summaryTable } from '../../bench/lib/figures.js';
import { meanSteal, stealMeter } from '../../bench/lib/steal.js';

/** The summary row of a figure, as its cells. */
function row(table: string, figure: string): string[] {
  const line = table.split('\n').find((l) => l.startsWith(`| ${figure} `));
  if (!line) throw new Error(`no row for ${figure}`);
  return line.split('|').slice(1, -1).map((cell) => cell.trim());
}

describe('the benchmark summary', () => {
  it('prints beside each figure the share of CPU stolen from the VM while it and its yardstick were measured', () => {
    recordFigure('roundTrip', 900, 0.12);
    recordFigure('roundTripBareRate', 4_000, 0.03);
    recordFigure('streamAddedP50', 2.5);
    const table = summaryTable()!;
    expect(row(table, 'agent round trip, SDK agents (create -> complete)').at(-1)).toBe('12% / 3%');
    expect(row(table, 'idle delivery on the stream: assignment commit -> agent, p50').at(-1)).toBe('unknown');
  });

  it('averages steal over several measurements, and gives none when one is unknown', () => {
    expect(meanSteal([0.1, 0.3])).toBeCloseTo(0.2);
    expect(meanSteal([0.1, undefined])).toBeUndefined();
    expect(meanSteal([])).toBeUndefined();
  });

  it('reads a share between 0 and 1 from this Linux machine', async () => {
    const stolen = stealMeter();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const share = stolen();
    expect(share).toBeGreaterThanOrEqual(0);
    expect(share).toBeLessThanOrEqual(1);
  });
});
