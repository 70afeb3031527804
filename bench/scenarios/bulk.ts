import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import { REPLICA_ADMIN_TOKEN } from '../../test/helpers/replica-process.js';
import { withBenchDatabase } from '../lib/database.js';
import { withReplicas } from '../lib/replicas.js';
import { fmtMs, fmtRate, ratio, table, type LatencySummary } from '../lib/stats.js';
import { createPaced, createToAssigned, waitUntil } from '../lib/workload.js';
import { PROFILE, log, schedulerConfig, withSwarm } from './common.js';

/** A scope no agent serves: requeued tasks stay pending, so the swarm's only work is the measured one. */
const OUTAGE_SCOPE = 'bench-outage';
const PACE = 200;

async function seedFailed(db: Db, count: number): Promise<void> {
  await sql`
    INSERT INTO dispatch_tasks (requester, title, scope, status, attempt, assignee, assigned_at, completed_at, error)
    SELECT 'bench-outage-requester', 'failed during the outage ' || n, ${OUTAGE_SCOPE}, 'failed', 1,
           'bench-agent-000', now(), now(), 'downstream unavailable'
      FROM generate_series(1, ${count}) AS n`.execute(db);
}

async function bulk(url: string, action: 'requeue' | 'cancel', limit: number): Promise<{ changed: number; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${url}/api/v1/tasks/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-agent-id': 'bench-operator', authorization: `Bearer ${REPLICA_ADMIN_TOKEN}` },
    body: JSON.stringify({ filter: { scope: OUTAGE_SCOPE }, limit }),
  });
  const body = (await response.json()) as { changed: number };
  if (response.status !== 200) throw new Error(`bulk ${action}: ${response.status} ${JSON.stringify(body)}`);
  return { changed: body.changed, ms: performance.now() - started };
}

async function allAssigned(db: Db, requester: string): Promise<void> {
  await waitUntil(
    `${requester}'s tasks assigned`,
    async () =>
      (await sql<{ n: number }>`SELECT count(*)::int AS n FROM dispatch_tasks WHERE requester = ${requester} AND status = 'pending'`.execute(db)).rows[0]!.n === 0,
    60_000,
    100,
  );
}

/** Paced creates over REST for as long as `busy` is unsettled (at least one second, at most two minutes). */
async function paceDuring(urls: readonly string[], requester: string, busy: Promise<unknown> | null, seconds: number): Promise<void> {
  let settled = busy === null;
  void busy?.finally(() => (settled = true));
  const deadline = Date.now() + 120_000;
  let elapsed = 0;
  do {
    await createPaced({ via: 'rest', urls }, { rate: PACE, count: PACE, maxInFlight: 16, requester });
    elapsed++;
  } while ((busy === null ? elapsed < seconds : !settled) && Date.now() < deadline);
}

/**
 * Bulk requeue and cancel of a large backlog (100 k failed tasks) while 2 replicas assign other
 * work created at 200/s: create-to-assigned of that work, without and with the bulk actions.
 */
export async function bulkActions(report: string[]): Promise<void> {
  const count = PROFILE.backlog;
  const figures = await withBenchDatabase('bulk', async (database) => {
    const db = database.handle.db;
    await seedFailed(db, count);
    await sql`ANALYZE dispatch_tasks`.execute(db);
    return await withReplicas(database.url, { count: 2, config: schedulerConfig('instant') }, (replicas) =>
      withSwarm(replicas, async () => {
        const urls = replicas.map((r) => r.apiUrl);
        await createPaced({ via: 'rest', urls }, { rate: PACE, count: PACE, maxInFlight: 16, requester: 'bench-warmup' });
        log(`bulk: baseline, ${PACE} creates/s with no bulk action`);
        await paceDuring(urls, 'bench-quiet', null, PROFILE.httpSeconds);
        await allAssigned(db, 'bench-quiet');
        log(`bulk: requeue then cancel ${count} tasks while ${PACE} creates/s are assigned`);
        const actions = (async () => {
          const requeue = await bulk(urls[0]!, 'requeue', count);
          const cancel = await bulk(urls[1]!, 'cancel', count);
          return { requeue, cancel };
        })();
        await paceDuring(urls, 'bench-busy', actions, 0);
        const done = await actions;
        await allAssigned(db, 'bench-busy');
        return { quiet: await createToAssigned(db, 'bench-quiet'), busy: await createToAssigned(db, 'bench-busy'), ...done };
      }),
    );
  });
  const row = (label: string, s: LatencySummary) => [label, String(s.n), fmtMs(s.p50), fmtMs(s.p99), fmtMs(s.max)];
  report.push(
    `### Bulk requeue and cancel of ${count.toLocaleString('en')} tasks, 2 replicas assigning other work (${PACE} creates/s)`,
    table(['create-to-assigned of the other work', 'tasks', 'p50', 'p99', 'max'], [row('without a bulk action', figures.quiet), row('during requeue + cancel', figures.busy)]),
    table(
      ['action', 'tasks changed', 'took', 'rate', 'p99 during / without (target <= 2x)'],
      [
        ['requeue', String(figures.requeue.changed), fmtMs(figures.requeue.ms), fmtRate((figures.requeue.changed * 1_000) / figures.requeue.ms), ratio(figures.busy.p99, figures.quiet.p99, 'higher')],
        ['cancel', String(figures.cancel.changed), fmtMs(figures.cancel.ms), fmtRate((figures.cancel.changed * 1_000) / figures.cancel.ms), ''],
      ],
    ),
  );
}
