import { readFileSync } from 'node:fs';

/**
 * Steal time: the share of this VM's CPU time that the hypervisor gave to other guests (the
 * `steal` column of /proc/stat, Linux). Every figure of the benchmark is CPU-bound on two vCPUs,
 * and on this VM the share went from 0 to 20-38% within minutes (docs/BENCHMARKS.md, session 38):
 * the processes' own CPU, which the scenarios count, cannot show it, since stolen time belongs to
 * no process. Printed beside each figure, it says which runs met a machine that was not all theirs.
 */

interface Ticks {
  steal: number;
  total: number;
}

/** The machine's CPU ticks so far (user, nice, system, idle, iowait, irq, softirq, steal); undefined where /proc/stat is not there. */
function readTicks(): Ticks | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
    return { steal: fields[7] ?? 0, total: fields.reduce((sum, n) => sum + n, 0) };
  } catch {
    return undefined;
  }
}

/** Starts measuring: the function returned gives the share of CPU time stolen since (0 to 1), undefined if unknown. */
export function stealMeter(): () => number | undefined {
  const from = readTicks();
  return () => {
    const to = readTicks();
    if (!from || !to || to.total <= from.total) return undefined;
    return (to.steal - from.steal) / (to.total - from.total);
  };
}

/** Runs `fn` and gives its result with the share of CPU time stolen meanwhile. */
export async function withSteal<T>(fn: () => Promise<T>): Promise<{ result: T; steal: number | undefined }> {
  const stolen = stealMeter();
  const result = await fn();
  return { result, steal: stolen() };
}

/** The mean share over several measurements (each weighed alike), undefined if any is unknown. */
export function meanSteal(shares: readonly (number | undefined)[]): number | undefined {
  if (shares.length === 0 || shares.some((share) => share === undefined)) return undefined;
  return (shares as number[]).reduce((sum, share) => sum + share, 0) / shares.length;
}

/** "12%", or "unknown". */
export function fmtStealShare(share: number | undefined): string {
  return share === undefined ? 'unknown' : `${(share * 100).toFixed(0)}%`;
}

/** "steal 12%", for a log line. */
export function fmtSteal(share: number | undefined): string {
  return `steal ${fmtStealShare(share)}`;
}
