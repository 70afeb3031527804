import { connect } from 'nats';
import pg from 'pg';
import { startNatsServer } from '../../test/helpers/nats-server.js';
import { withCommitStampedServer } from '../lib/database.js';
import { NOTIFY_CHANNEL } from '../../src/db/contract.js';
import { instrumentHops, taskStamps } from '../lib/hops.js';
import { recordFigure } from '../lib/figures.js';
import { fmtSteal, stealMeter } from '../lib/steal.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, summarize, table } from '../lib/stats.js';
import { createPaced, waitAssigned, waitUntil } from '../lib/workload.js';
import { PROFILE, log, schedulerConfig, withSwarm } from './common.js';

const REQUESTER = 'bench-hops';
/** Wall clock in ms with sub-millisecond precision, comparable with PostgreSQL's stamps (same host clock). */
const wallNow = () => performance.timeOrigin + performance.now();

/** The first stamp in [from, to), or NaN. */
function firstIn(stamps: readonly number[], from: number, to: number): number {
  return stamps.find((t) => t >= from && t < to) ?? Number.NaN;
}

interface Hop {
  name: string;
  values: number[];
}

/**
 * Where idle create -> assigned time goes: one replica (publishing to a private NATS), tasks
 * created over REST one at a time, each hop stamped: the insert's start and commit, the
 * assigners' wake-up (NOTIFY dispatch_assign, migration 0019) reaching a listening client, the
 * batch transaction's start, the task's row claimed, the batch's commit, and the `assigned`
 * event arriving over NATS. Runs on a scratch PostgreSQL with track_commit_timestamp on (commit
 * times are otherwise invisible), with bench-only triggers (bench/lib/hops.ts).
 */
export async function hops(report: string[]): Promise<void> {
  log(`hops: idle create -> assigned, ${PROFILE.idleTasks} tasks one at a time over REST, per-hop stamps`);
  await withCommitStampedServer('hops', async (serverUrl, database) => {
    const nats = await startNatsServer({ args: ['-js'] });
    const listener = new pg.Client({ connectionString: serverUrl, application_name: 'dispatch-bench-listener' });
    const nc = await connect({ servers: nats.url });
    try {
      await instrumentHops(database.db);
      const notified: number[] = [];
      await listener.connect();
      listener.on('notification', () => notified.push(wallNow()));
      await listener.query(`LISTEN ${NOTIFY_CHANNEL.assign}`);
      const delivered = new Map<string, number>();
      const subscription = nc.subscribe('swarm.task.*.assigned', {
        callback: (_error, message) => delivered.set(message.subject.split('.')[2]!, wallNow()),
      });
      let steal: number | undefined;
      const hopsOut = await withReplicas(serverUrl, { count: 1, config: { ...schedulerConfig('instant'), hermes: { url: nats.url } } }, (replicas) =>
        withSwarm(replicas, async () => {
          const rest = { via: 'rest', urls: replicas.map((r) => r.apiUrl) } as const;
          await createPaced(rest, { rate: 1_000 / PROFILE.idleGapMs, count: 20, maxInFlight: 1, requester: 'bench-hops-warmup' });
          const stolen = stealMeter();
          await createPaced(rest, { rate: 1_000 / PROFILE.idleGapMs, count: PROFILE.idleTasks, maxInFlight: 1, requester: REQUESTER });
          await waitAssigned(database.db, 60_000);
          steal = stolen();
          const tasks = await taskStamps(database.db, REQUESTER);
          await waitUntil('every assigned event delivered over NATS', async () => tasks.every((t) => delivered.has(t.id)), 30_000);
          return tasks;
        }),
      );
      subscription.unsubscribe();
      const hopsList: Hop[] = [
        { name: 'insert transaction (created_at -> its commit)', values: [] },
        { name: 'insert commit -> NOTIFY dispatch_assign reaches the benchmark\'s own LISTEN client', values: [] },
        { name: 'insert commit -> batch transaction starts (NOTIFY to the replica, drain, pool, advisory lock)', values: [] },
        { name: 'batch start -> task row updated to assigned (lock agents, claim, read agents, score, write)', values: [] },
        { name: 'row updated -> batch commit (events, counters, COMMIT)', values: [] },
        { name: 'batch commit -> `assigned` event delivered over NATS (outbox)', values: [] },
        { name: 'total: created_at -> assigned_at (the benchmark\'s figure)', values: [] },
        { name: 'total: created_at -> batch commit (visible to readers)', values: [] },
        { name: 'total: created_at -> delivered over NATS', values: [] },
      ];
      hopsOut.forEach((t, i) => {
        const next = hopsOut[i + 1]?.created ?? Number.POSITIVE_INFINITY;
        const notify = firstIn(notified, t.insertCommit - 1, next);
        const nats = delivered.get(t.id) ?? Number.NaN;
        const spans = [
          t.insertCommit - t.created,
          notify - t.insertCommit,
          t.batchStart - t.insertCommit,
          t.claimed - t.batchStart,
          t.batchCommit - t.claimed,
          nats - t.batchCommit,
          t.batchStart - t.created,
          t.batchCommit - t.created,
          nats - t.created,
        ];
        spans.forEach((value, k) => {
          if (Number.isFinite(value)) hopsList[k]!.values.push(value);
        });
      });
      const rows = hopsList.map((hop) => {
        const s = summarize(hop.values);
        return [hop.name, String(s.n), fmtMs(s.p50), fmtMs(s.p99), fmtMs(s.mean)];
      });
      for (const row of rows) log(`  ${row[0]}: p50 ${row[2]} p99 ${row[3]} mean ${row[4]}`);
      log(`  ${fmtSteal(steal)} while the tasks were created`);
      const visible = summarize(hopsList[7]!.values);
      recordFigure('idleCommitP50', visible.p50, steal);
      recordFigure('idleCommitP99', visible.p99, steal);
      report.push(
        `### Where idle create -> assigned time goes (1 replica, ${hopsOut.length} tasks one at a time over REST, scratch PostgreSQL with track_commit_timestamp)`,
        table(['hop', 'samples', 'p50', 'p99', 'mean'], rows),
        'A task written while an assigner was still active sends no wake-up: it has no NOTIFY sample.',
      );
    } finally {
      await nc.close();
      await listener.end().catch(() => undefined);
      await nats.stop();
    }
  });
}
