import { recordFigure } from '../lib/figures.js';
import { fmtSteal, withSteal } from '../lib/steal.js';
import { withBenchDatabase } from '../lib/database.js';
import { fmtRate, table } from '../lib/stats.js';
import { bareRouteRate } from '../reference/bare-insert.js';
import { skipLockedClaimRate } from '../reference/skip-locked-claim.js';
import { PROFILE, log } from './common.js';

/**
 * The libraries underneath Dispatch, run bare on the same database server in the same run (one
 * module each in bench/reference/): the summary at the end prints Dispatch's figures as ratios
 * of these, which travel from one day's machine to the next where absolute figures do not.
 * graphile-worker's two yardsticks run beside the figures they stand for, minutes later: its
 * batched drain in the drain scenario, its enqueue -> start hop in the latency scenario.
 */
export async function yardsticks(report: string[]): Promise<void> {
  log(`yardstick: raw SKIP LOCKED claims of 100 rows, 4 clients, ${PROFILE.backlog.toLocaleString('en-US')} rows`);
  const { result: claims, steal: claimsSteal } = await withSteal(() => skipLockedClaimRate(PROFILE.backlog));
  log(`  ${fmtRate(claims.perSecond)}; ${fmtSteal(claimsSteal)}`);
  recordFigure('skipLockedRate', claims.perSecond, claimsSteal);

  log(`yardstick: bare Hono route, one INSERT per request, 50 connections`);
  const { result: bare, steal: bareSteal } = await withSteal(() =>
    withBenchDatabase('bare_insert', (database) => bareRouteRate(database.url, { warmupS: PROFILE.httpWarmupS, durationS: PROFILE.httpSeconds }), false),
  );
  log(`  ${fmtRate(bare.requestsPerSecond)}, p99 ${bare.p99} ms; ${fmtSteal(bareSteal)}`);
  recordFigure('bareInsertRate', bare.requestsPerSecond, bareSteal);

  report.push(
    '### Yardsticks: the libraries underneath, bare, on the same server in the same run',
    table(
      ['yardstick', 'figure'],
      [
        ['raw SKIP LOCKED claim, 100 rows per claim, 4 clients', `${fmtRate(claims.perSecond)} (${claims.rows.toLocaleString('en-US')} rows)`],
        ['bare Hono route, one INSERT per request, 50 connections', `${fmtRate(bare.requestsPerSecond)}, p50 ${bare.p50} ms, p99 ${bare.p99} ms`],
      ],
    ),
  );
}
