import { recordFigure } from '../lib/figures.js';
import { withBenchDatabase } from '../lib/database.js';
import { fmtMs, fmtRate, table } from '../lib/stats.js';
import { bareRouteRate } from '../reference/bare-insert.js';
import { graphileAddJobLatency } from '../reference/graphile-latency.js';
import { skipLockedClaimRate } from '../reference/skip-locked-claim.js';
import { PROFILE, log } from './common.js';

/**
 * The libraries underneath Dispatch, run bare on the same database server in the same run (one
 * module each in bench/reference/): the summary at the end prints Dispatch's figures as ratios
 * of these, which travel from one day's machine to the next where absolute figures do not.
 */
export async function yardsticks(report: string[]): Promise<void> {
  log(`yardstick: graphile-worker addJob -> task start, ${PROFILE.idleTasks} jobs one at a time, ${PROFILE.idleGapMs} ms apart`);
  const latency = await graphileAddJobLatency(PROFILE.idleTasks, PROFILE.idleGapMs);
  log(`  p50 ${fmtMs(latency.p50)} p99 ${fmtMs(latency.p99)} max ${fmtMs(latency.max)}`);
  recordFigure('gwLatencyP50', latency.p50);
  recordFigure('gwLatencyP99', latency.p99);

  log(`yardstick: raw SKIP LOCKED claims of 100 rows, 4 clients, ${PROFILE.backlog.toLocaleString('en-US')} rows`);
  const claims = await skipLockedClaimRate(PROFILE.backlog);
  log(`  ${fmtRate(claims.perSecond)}`);
  recordFigure('skipLockedRate', claims.perSecond);

  log(`yardstick: bare Hono route, one INSERT per request, 50 connections`);
  const bare = await withBenchDatabase('bare_insert', (database) => bareRouteRate(database.url, { warmupS: PROFILE.httpWarmupS, durationS: PROFILE.httpSeconds }), false);
  log(`  ${fmtRate(bare.requestsPerSecond)}, p99 ${bare.p99} ms`);
  recordFigure('bareInsertRate', bare.requestsPerSecond);

  report.push(
    '### Yardsticks: the libraries underneath, bare, on the same server in the same run',
    table(
      ['yardstick', 'figure'],
      [
        ['graphile-worker addJob -> task start (idle, one at a time)', `p50 ${fmtMs(latency.p50)}, p99 ${fmtMs(latency.p99)}, max ${fmtMs(latency.max)} (n=${latency.n})`],
        ['raw SKIP LOCKED claim, 100 rows per claim, 4 clients', `${fmtRate(claims.perSecond)} (${claims.rows.toLocaleString('en-US')} rows)`],
        ['bare Hono route, one INSERT per request, 50 connections', `${fmtRate(bare.requestsPerSecond)}, p50 ${bare.p50} ms, p99 ${bare.p99} ms`],
      ],
    ),
  );
}
