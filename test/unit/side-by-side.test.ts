import { describe, expect, it } from 'vitest';
import { sideBySide } from '../../src/assignment/side-by-side.js';

/** Batches the test ends by hand: each call is recorded with its lane and how to end it. */
function manualBatches() {
  const calls: Array<{ lane: number; whole: () => void; short: () => void; fail: (error: Error) => void }> = [];
  const batch = (lane: number) =>
    new Promise<boolean>((resolve, reject) => {
      calls.push({ lane, whole: () => resolve(true), short: () => resolve(false), fail: reject });
    });
  const byLane = (lane: number) => calls.filter((c) => c.lane === lane);
  return { calls, batch, byLane };
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Whether `promise` has settled, without waiting for it. */
async function hasSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await settle();
  return settled;
}

describe('sideBySide', () => {
  it('keeps every lane going while each batch places a whole batch', async () => {
    const batches = manualBatches();
    const run = sideBySide(2, batches.batch);
    for (let round = 0; round < 3; round++) {
      await settle();
      for (const lane of [0, 1]) batches.byLane(lane).at(-1)!.whole();
    }
    await settle();
    expect(batches.byLane(0)).toHaveLength(4);
    expect(batches.byLane(1)).toHaveLength(4);
    batches.byLane(0).at(-1)!.short();
    batches.byLane(1).at(-1)!.whole();
    expect(await hasSettled(run)).toBe(true);
    expect(batches.calls).toHaveLength(8);
  });

  it('ends every lane once one batch comes up short, each at the end of the batch it is running', async () => {
    const batches = manualBatches();
    const run = sideBySide(2, batches.batch);
    await settle();
    // Lane 1 is quicker: a whole batch, then a short one while lane 0 is still on its first.
    batches.byLane(1)[0]!.whole();
    await settle();
    batches.byLane(1)[1]!.short();
    await settle();
    expect(await hasSettled(run)).toBe(false);
    // Lane 0's batch in flight was whole: it finishes it, and starts no other.
    batches.byLane(0)[0]!.whole();
    expect(await hasSettled(run)).toBe(true);
    expect(batches.calls.map((c) => c.lane)).toEqual([0, 1, 1]);
  });

  it('passes a failure on once every lane has ended, and starts no batch after it', async () => {
    const batches = manualBatches();
    const run = sideBySide(3, batches.batch);
    run.catch(() => {});
    await settle();
    batches.byLane(2)[0]!.fail(new Error('connection lost'));
    await settle();
    expect(await hasSettled(run)).toBe(false);
    batches.byLane(0)[0]!.whole();
    await settle();
    expect(await hasSettled(run)).toBe(false);
    batches.byLane(1)[0]!.whole();
    expect(await hasSettled(run)).toBe(true);
    await expect(run).rejects.toThrow('connection lost');
    expect(batches.calls).toHaveLength(3);
  });
});
