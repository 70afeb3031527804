import { withBenchDatabase } from '../lib/database.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, fmtRate, table } from '../lib/stats.js';
import { BENCH_SCOPE, dbNow, drainFigures, insertPending, waitAssigned, type DrainFigures } from '../lib/workload.js';
import { REPLICA_ADMIN_TOKEN, type ReplicaProcess } from '../../test/helpers/replica-process.js';
import { PROFILE, log, meanBatchMs, schedulerConfig, withSwarm } from './common.js';

/**
 * Limits set on the scope, high enough never to bind (the swarm can hold the whole backlog), so
 * the figure is what the limits cost, not what they hold back: the scope row locked in every
 * batch, its usage read from the counters, its starts recorded.
 */
const LIMITS = { max_running: 10_000_000, max_starts_per_minute: 10_000_000 };

interface LimitRun extends DrainFigures {
  limited: boolean;
  replicas: number;
  meanBatchMs: number;
}

async function setLimits(replica: ReplicaProcess): Promise<void> {
  const response = await fetch(`${replica.apiUrl}/api/v1/scopes/${BENCH_SCOPE}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${REPLICA_ADMIN_TOKEN}`, 'x-agent-id': 'bench-operator' },
    body: JSON.stringify(LIMITS),
  });
  if (response.status !== 200) throw new Error(`setting scope limits: ${response.status} ${await response.text()}`);
}

async function limitRun(limited: boolean, replicaCount: number): Promise<LimitRun> {
  return await withBenchDatabase(`scope_limits_${limited ? 'on' : 'off'}_${replicaCount}`, async (database) => {
    return await withReplicas(database.url, { count: replicaCount, config: schedulerConfig('instant') }, async (replicas) => {
      return await withSwarm(replicas, async () => {
        if (limited) await setLimits(replicas[0]!);
        await insertPending(database.handle.db, PROFILE.backlog);
        const readyAt = await dbNow(database.handle.db);
        await waitAssigned(database.handle.db, 300_000);
        const figures = await drainFigures(database.handle.db, readyAt);
        return { ...figures, limited, replicas: replicaCount, meanBatchMs: await meanBatchMs(replicas) };
      });
    });
  });
}

/** Assignment throughput draining a backlog with per-scope limits set against without (target: at most 20% slower). */
export async function scopeLimits(report: string[]): Promise<void> {
  const runs: LimitRun[] = [];
  for (const replicas of [1, 3]) {
    for (const limited of [false, true]) {
      log(`scope-limits: ${PROFILE.backlog.toLocaleString('en-US')} pending, ${replicas} replica(s), limits ${limited ? 'set' : 'not set'}`);
      const run = await limitRun(limited, replicas);
      log(`  ${fmtRate((run.tasks * 1_000) / run.endToEndMs)} end to end, batch ${fmtMs(run.meanBatchMs)}`);
      runs.push(run);
    }
  }
  const rows = runs.map((r) => {
    const base = runs.find((b) => b.replicas === r.replicas && !b.limited)!;
    const rate = (r.tasks * 1_000) / r.endToEndMs;
    const baseRate = (base.tasks * 1_000) / base.endToEndMs;
    return [
      String(r.replicas),
      r.limited ? 'max_running + max_starts_per_minute' : 'none',
      r.tasks.toLocaleString('en-US'),
      fmtMs(r.endToEndMs),
      fmtRate(rate),
      fmtMs(r.meanBatchMs),
      r.limited ? `${(((baseRate - rate) / baseRate) * 100).toFixed(1)}% slower` : '-',
    ];
  });
  report.push(
    `### Per-scope limits: draining a ${PROFILE.backlog.toLocaleString('en-US')}-task backlog with limits set (not binding) vs without`,
    table(['replicas', 'scope limits', 'assigned', 'commit -> last assigned', 'assignments/s', 'mean batch', 'cost'], rows),
  );
}
