import type { AgentShare } from './assignment.queries.js';

/**
 * Runs `lanes` loops of `batch` side by side while every batch places a whole batch: the first
 * batch that does not (it returns false) or fails ends every lane at the end of the batch it is
 * running, and resolves (or rejects with the first failure) once every lane has ended.
 *
 * Lanes end together. Ending alone, a lane whose batch came up short left the other running
 * alone on a backlog, one batch at a time, until it too came up short: a short batch mid-backlog
 * is a race, not the end of the work (a lane's claim met the rows another lane had just taken),
 * and single 100 k drains spent 17% to 80% of their time with one lane running, which moved
 * their rates by half (docs/BENCHMARKS.md, session 35). Ended together, the drain goes back to
 * one batch over all the agents, which starts the lanes again if it places a whole batch.
 */
export async function sideBySide(lanes: number, batch: (lane: number) => Promise<boolean>): Promise<void> {
  let ended = false;
  const runs = await Promise.allSettled(
    Array.from({ length: lanes }, async (_, lane) => {
      try {
        while (!ended) {
          if (!(await batch(lane))) ended = true;
        }
      } catch (error) {
        ended = true;
        throw error;
      }
    }),
  );
  // Every batch has ended (each lane's connection is free again) before a failure is passed on.
  const failed = runs.find((run): run is PromiseRejectedResult => run.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * How many rows at the head of the queue a batch side by side with others walks past, beyond
 * its own: two batches for each other lane. One is the batch that lane holds as this claim
 * starts; the other is its next, when it commits the one it held and claims again while this
 * claim runs: this claim's candidates, read before that commit, then count the committed rows
 * (no longer pending once locked) and the newly held ones (passed over). With one batch for
 * each, such a claim came up short (64 tasks of 500: only the allowance past them) 16 times in
 * one `--only drain` run (session 35), each ending the lanes.
 */
export function rowsHeldBeside(share: AgentShare | undefined, batchSize: number): number {
  return share ? 2 * (share.of - 1) * batchSize : 0;
}
