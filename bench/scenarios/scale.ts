import { scaleRun, type ScaleRun } from '../lib/scale.js';
import { fmtMs, table } from '../lib/stats.js';
import { PROFILE, log } from './common.js';

/** The claim and the API reads on growing tables, failing on a sequential scan of the task tables. */
export async function scale(report: string[]): Promise<void> {
  const runs: ScaleRun[] = [];
  for (const rows of PROFILE.scaleRows) {
    log(`scale: ${rows.toLocaleString('en-US')} tasks (1% pending), one event each`);
    runs.push(await scaleRun(rows));
  }
  // A small table may rightly be read whole; from 100 k rows on (the largest size in smoke) it may not.
  const threshold = Math.min(100_000, Math.max(...PROFILE.scaleRows));
  const seqScans = runs.flatMap((r) => (r.rows >= threshold ? r.queries.filter((q) => q.plan.seqScan).map((q) => `${q.name} at ${r.rows}`) : []));
  report.push(
    '### Query cost against table size (EXPLAIN ANALYZE via auto_explain, warm, the last of 3 runs)',
    table(
      ['tasks in table', 'table + indexes', 'query', 'how the task tables were read', 'time', 'buffers'],
      runs.flatMap((r) =>
        r.queries.map((q) => [
          r.rows.toLocaleString('en-US'),
          `${r.tableMb.toFixed(0)} MB`,
          q.name,
          q.plan.access.join(', ') + (q.plan.seqScan && r.rows >= threshold ? ' **SEQ SCAN**' : ''),
          fmtMs(q.plan.ms),
          String(q.plan.buffers),
        ]),
      ),
    ),
    '### Whole requests to one replica on the same tables (median / slowest of 9, after a warm-up; issue 15: a scrape <= 20 ms at 1 M tasks)',
    table(
      ['tasks in table', 'request', 'median', 'slowest'],
      runs.flatMap((r) => r.requests.map((q) => [r.rows.toLocaleString('en-US'), q.name, fmtMs(q.medianMs), fmtMs(q.maxMs)])),
    ),
    seqScans.length === 0 ? `no sequential scan of the task tables at ${threshold.toLocaleString('en-US')} rows or more` : `sequential scans: ${seqScans.join('; ')}`,
  );
  if (seqScans.length > 0) process.exitCode = 1;
}
