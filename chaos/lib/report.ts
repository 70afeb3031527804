import type { ChaosReport } from './run-chaos.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

const s = (ms: number | null) => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(1)} s`);

/** The human summary printed at the end of a run. */
export function formatReport(report: ChaosReport): string {
  const { profile, timings, traffic } = report;
  const out: string[] = [];
  out.push('');
  out.push(`Dispatch chaos run: profile ${profile.name}, seed "${profile.seed}"`);
  out.push(`${profile.replicas} replicas, ${profile.agents} agents, ${profile.tasks} tasks over ${profile.scopes.length} scopes, priorities 1-5`);
  out.push('');
  out.push(
    table([
      ['fault', 'at', 'lifted', 'what happened'],
      ...report.faults.map((f) => [f.name, s(f.startedAt), s(f.endedAt), f.detail + (f.violations.length ? ` [${f.violations.length} violations]` : '')]),
    ]),
  );
  out.push('');
  out.push(table([['check', 'result', 'violations', 'figures'], ...report.checks.map((c) => [c.name, c.ok ? 'PASS' : 'FAIL', String(c.count), c.summary])]));
  out.push('');
  out.push(
    table([
      ['timing', 'value'],
      ['setup (PostgreSQL, NATS, fakes, replicas)', s(timings.setupMs)],
      ['task creation (feed)', s(timings.feedMs)],
      ['first task to drained queue', s(timings.runMs)],
      ['last fault lifted to drained queue', s(timings.drainAfterLastFaultMs)],
      ['last task created to drained queue', s(timings.drainAfterFeedMs)],
      ['checks', s(timings.checksMs)],
      ['total', s(timings.totalMs)],
    ]),
  );
  out.push('');
  if (report.figures) {
    out.push(`agent attempts by action/outcome: ${Object.entries(report.figures.byAction).sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
    out.push(`ambiguous calls resolved from the events table: ${report.figures.ambiguousResolved}`);
  }
  out.push(
    `traffic: ${traffic.requests} agent requests (${traffic.polls} polls), 503 retried ${traffic.unavailable503}, network errors retried ${traffic.networkErrors}, ` +
      `agent stops ${traffic.agentStops}, idempotent creation replays ${traffic.creationReplays}`,
  );
  const failed = report.checks.filter((c) => !c.ok);
  for (const c of failed) {
    out.push('');
    out.push(`FAIL ${c.name} (${c.count}):`);
    for (const v of c.violations) out.push(`  - ${v}`);
  }
  out.push('');
  out.push(report.ok ? 'RESULT: PASS (0 violations)' : `RESULT: FAIL (${failed.reduce((n, c) => n + c.count, 0)} violations)`);
  return out.join('\n');
}
