import type { DispatchConfigInput } from '../../src/config/config.js';
import { spawnReplicas, type ReplicaProcess } from '../../test/helpers/replica-process.js';

export interface BenchReplicaOptions {
  count: number;
  /** Extra config over the benchmark's defaults (merged per section). */
  config?: DispatchConfigInput;
}

/** Benchmark defaults: the shipped assignment settings, pools sized for one busy replica. */
function benchConfig(extra: DispatchConfigInput = {}): DispatchConfigInput {
  const base: DispatchConfigInput = {
    database: { pool_size: 10 },
    worker: { concurrency: 2 },
    logging: { level: 'warn' },
  };
  const merged: Record<string, unknown> = { ...base };
  for (const [section, values] of Object.entries(extra)) {
    merged[section] = { ...(merged[section] as object | undefined), ...(values as object) };
  }
  return merged as DispatchConfigInput;
}

/** Starts `count` Dispatch processes on `databaseUrl`, runs `fn`, and always stops them. */
export async function withReplicas<T>(
  databaseUrl: string,
  options: BenchReplicaOptions,
  fn: (replicas: ReplicaProcess[]) => Promise<T>,
): Promise<T> {
  const replicas = await spawnReplicas(options.count, { databaseUrl, name: 'bench', config: benchConfig(options.config) });
  try {
    return await fn(replicas);
  } finally {
    const exits = await Promise.all(replicas.map((r) => r.stop(15_000)));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) console.warn(`replica ${i + 1} exited with ${JSON.stringify(exit)}\n${replicas[i]!.output().slice(-2_000)}`);
    });
  }
}

/**
 * Sum of one metric across the replicas' /metrics: every series, or only those whose labels
 * include `label` (e.g. 'event="assigned"').
 */
export async function scrapeSum(replicas: readonly ReplicaProcess[], metric: string, label?: string): Promise<number> {
  let total = 0;
  for (const replica of replicas) {
    const text = await (await fetch(`${replica.opsUrl}/metrics`)).text();
    for (const line of text.split('\n')) {
      const series = line.startsWith(`${metric} `) || line.startsWith(`${metric}{`);
      if (series && (label === undefined || line.slice(metric.length).split(' ')[0]!.includes(label))) total += Number(line.split(' ').at(-1));
    }
  }
  return total;
}
