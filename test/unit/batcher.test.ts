import { afterEach, describe, expect, it, vi } from 'vitest';
import { Batcher } from '../../src/db/batcher.js';

/** A batch runner the test completes by hand, recording every batch it was given. */
function manualRunner<T>() {
  const calls: Array<{ items: T[]; finish: (outputs?: unknown[]) => void; fail: (error: unknown) => void }> = [];
  const run = (items: T[]) =>
    new Promise<unknown[]>((resolve, reject) => {
      calls.push({ items, finish: (outputs) => resolve(outputs ?? items.map((i) => `out:${String(i)}`)), fail: reject });
    });
  return { calls, run };
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('Batcher', () => {
  it('sends a lone item at once, alone', async () => {
    const runner = manualRunner<number>();
    const batcher = new Batcher(runner.run, { maxInFlight: 2 });
    const result = batcher.submit(1);
    expect(runner.calls.map((c) => c.items)).toEqual([[1]]);
    runner.calls[0]!.finish();
    expect(await result).toBe('out:1');
  });

  it('batches what arrives while the in-flight slots are busy, and keeps each caller’s output', async () => {
    const runner = manualRunner<number>();
    const batcher = new Batcher(runner.run, { maxInFlight: 2 });
    const results = [1, 2, 3, 4, 5, 6].map((i) => batcher.submit(i));
    expect(runner.calls.map((c) => c.items)).toEqual([[1], [2]]);
    runner.calls[0]!.finish();
    await settle();
    expect(runner.calls.map((c) => c.items)).toEqual([[1], [2], [3, 4, 5, 6]]);
    runner.calls[1]!.finish();
    runner.calls[2]!.finish();
    expect(await Promise.all(results)).toEqual(['out:1', 'out:2', 'out:3', 'out:4', 'out:5', 'out:6']);
  });

  it('never has more batches in flight than allowed, nor more items in one than the cap', async () => {
    const runner = manualRunner<number>();
    const batcher = new Batcher(runner.run, { maxInFlight: 1, maxBatch: 3 });
    const results = Array.from({ length: 8 }, (_, i) => batcher.submit(i));
    expect(runner.calls).toHaveLength(1);
    for (let done = 0; done < 4; done++) {
      runner.calls[done]!.finish();
      await settle();
    }
    expect(runner.calls.map((c) => c.items)).toEqual([[0], [1, 2, 3], [4, 5, 6], [7]]);
    await Promise.all(results);
  });

  it('keeps a batch within its weight cap, and sends an item heavier than the cap alone', async () => {
    const runner = manualRunner<number>();
    // Each item weighs its own value; a batch carries at most 10.
    const batcher = new Batcher(runner.run, { maxInFlight: 1, weight: { of: (i: number) => i, max: 10 } });
    const results = [1, 4, 5, 2, 30, 3, 3].map((i) => batcher.submit(i));
    for (let done = 0; done < 4; done++) {
      runner.calls[done]!.finish();
      await settle();
    }
    runner.calls[4]!.finish();
    await Promise.all(results);
    expect(runner.calls.map((c) => c.items)).toEqual([[1], [4, 5], [2], [30], [3, 3]]);
  });

  it('retries a refused batch item by item, so only the bad item fails', async () => {
    const calls: number[][] = [];
    const batcher = new Batcher<number, string>(async (items) => {
      calls.push(items);
      if (items.includes(3)) throw Object.assign(new Error('check violation'), { code: '23514' });
      return items.map((i) => `ok:${i}`);
    }, { maxInFlight: 1 });
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map((i) => batcher.submit(i)));
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : 'rejected'))).toEqual(['ok:1', 'ok:2', 'rejected', 'ok:4']);
    expect(calls).toEqual([[1], [2, 3, 4], [2], [3], [4]]);
  });

  it('fails a whole batch at once when the database is unreachable, without retrying each item', async () => {
    const calls: number[][] = [];
    let down = false;
    const batcher = new Batcher<number, string>(async (items) => {
      calls.push(items);
      if (down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      down = true;
      return items.map((i) => `ok:${i}`);
    }, { maxInFlight: 1 });
    const outcomes = await Promise.allSettled([1, 2, 3].map((i) => batcher.submit(i)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect(calls).toEqual([[1], [2, 3]]);
  });

  it('keeps working after a failure', async () => {
    let fail = true;
    const batcher = new Batcher<number, number>(async (items) => {
      if (fail) {
        fail = false;
        throw new Error('boom');
      }
      return items.map((i) => i * 10);
    });
    await expect(batcher.submit(1)).rejects.toThrow('boom');
    expect(await batcher.submit(2)).toBe(20);
  });

  describe('with a minimum interval between batches', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /** Finishes the batch in flight and lets the batcher react, on the faked clock. */
    async function finish(runner: ReturnType<typeof manualRunner<number>>, index: number): Promise<void> {
      runner.calls[index]!.finish();
      await vi.advanceTimersByTimeAsync(0);
    }

    it('starts the next batch no sooner than the interval after the last one started, with all that came meanwhile', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      const runner = manualRunner<number>();
      const batcher = new Batcher(runner.run, { maxInFlight: 1, minIntervalMs: 20 });
      const results = [batcher.submit(1), batcher.submit(2)];
      expect(runner.calls.map((c) => c.items)).toEqual([[1]]);
      await vi.advanceTimersByTimeAsync(5);
      await finish(runner, 0);
      results.push(batcher.submit(3));
      await vi.advanceTimersByTimeAsync(14);
      expect(runner.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(runner.calls.map((c) => c.items)).toEqual([[1], [2, 3]]);
      await finish(runner, 1);
      expect(await Promise.all(results)).toEqual(['out:1', 'out:2', 'out:3']);
    });

    it('sends a call after a quiet spell at once, and a full batch without waiting', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      const runner = manualRunner<number>();
      const batcher = new Batcher(runner.run, { maxInFlight: 1, maxBatch: 2, minIntervalMs: 20 });
      const results = [batcher.submit(1)];
      await finish(runner, 0);
      await vi.advanceTimersByTimeAsync(20);
      results.push(batcher.submit(2));
      expect(runner.calls.map((c) => c.items)).toEqual([[1], [2]]);
      results.push(batcher.submit(3), batcher.submit(4));
      await finish(runner, 1);
      expect(runner.calls.map((c) => c.items)).toEqual([[1], [2], [3, 4]]);
      await finish(runner, 2);
      expect(await Promise.all(results)).toEqual(['out:1', 'out:2', 'out:3', 'out:4']);
    });
  });
});
