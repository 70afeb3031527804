import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { useTestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { parseExposition } from '../helpers/metrics-text.js';

/**
 * The reference deployment (deploy/) stays true to the code: its files parse, and every metric
 * the dashboard and the alert rules query is one a running Dispatch exports. promtool and
 * HAProxy's own checks run in .ci/check-deploy.sh when those tools are installed.
 */
const deploy = (path: string) => readFileSync(new URL(`../../deploy/${path}`, import.meta.url), 'utf8');

interface Dashboard {
  uid: string;
  title: string;
  panels: { title: string; targets?: { expr: string }[] }[];
  templating: { list: { query: { query: string } }[] };
}
interface AlertRules {
  groups: { name: string; rules: { alert: string; expr: string; annotations: { description: string } }[] }[];
}

const dashboard = JSON.parse(deploy('grafana/dispatch.json')) as Dashboard;
const alerts = parse(deploy('prometheus/alerts.yml')) as AlertRules;
// merge: the replicas share one definition through a YAML merge key (<<), as compose reads it.
const compose = parse(deploy('compose.yaml'), { merge: true }) as { services: Record<string, { build?: { dockerfile: string }; image?: string }> };
const prometheus = parse(deploy('prometheus/prometheus.yml')) as {
  rule_files: string[];
  scrape_configs: { static_configs: { targets: string[] }[] }[];
};
const operations = readFileSync(new URL('../../docs/OPERATIONS.md', import.meta.url), 'utf8');

/** Prometheus makes these itself, per target; Dispatch does not export them. */
const FROM_PROMETHEUS = new Set(['up']);

/** Names of series an expression selects: Dispatch's own (dispatch_*) and Prometheus's. */
function metricNames(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '').replace(/"[^"]*"/g, '');
  return [...withoutLabels.matchAll(/\b(dispatch_[a-z0-9_]+|up)\b/g)].map((m) => m[1]!);
}

const queried = [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr }))),
  ...dashboard.templating.list.map((v) => ({ where: 'dashboard variable', expr: v.query.query })),
  ...alerts.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
];

describe('deploy/', () => {
  const database = useTestDatabase();
  let dispatch: TestDispatch;
  let exported: Map<string, string>;

  beforeAll(async () => {
    dispatch = await startTestDispatch(database().url);
    const text = await (await fetch(`${dispatch.opsUrl}/metrics`)).text();
    parseExposition(text);
    // Every metric family, from its TYPE line: a labelled family with no sample yet still counts.
    exported = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  });
  afterAll(async () => {
    await dispatch?.stop();
  });

  it('queries only metrics a running Dispatch exports', () => {
    const unknown: string[] = [];
    for (const { where, expr } of queried) {
      const names = metricNames(expr);
      expect(names.length, `${where} selects no metric: ${expr}`).toBeGreaterThan(0);
      for (const name of names) {
        if (FROM_PROMETHEUS.has(name) || exported.has(name)) continue;
        const base = name.replace(/_(bucket|sum|count)$/, '');
        if (base !== name && exported.get(base) === 'histogram') continue;
        unknown.push(`${where}: ${name}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('has the dashboard panels and alerts the runbook promises', () => {
    expect(dashboard.uid).toBe('dispatch');
    const exprs = queried.map((q) => q.expr).join('\n');
    for (const metric of [
      'dispatch_queue_depth',
      'dispatch_oldest_pending_seconds',
      'dispatch_schedule_to_start_seconds_bucket',
      'dispatch_tasks_finished_total',
      'dispatch_agent_load',
      'dispatch_events_outbox_lag_seconds',
    ]) {
      expect(exprs).toContain(metric);
    }
    expect(exprs).toMatch(/histogram_quantile\(0\.5, [^\n]*dispatch_schedule_to_start_seconds_bucket/);
    expect(exprs).toMatch(/histogram_quantile\(0\.99, [^\n]*dispatch_schedule_to_start_seconds_bucket/);
    const names = alerts.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(names).toEqual(expect.arrayContaining(['DispatchScopeBackedUp', 'DispatchOutboxStuck', 'DispatchReplicaDown']));
    // Each alert points at its section of the runbook, and the section exists.
    for (const name of names) expect(operations).toContain(`### ${name}`);
  });

  it('runs three replicas from the repository Dockerfile, all scraped by Prometheus', () => {
    const replicas = Object.entries(compose.services).filter(([, s]) => s.build?.dockerfile === 'Dockerfile');
    expect(replicas.map(([name]) => name).sort()).toEqual(['dispatch-1', 'dispatch-2', 'dispatch-3']);
    const targets = prometheus.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    expect(targets.sort()).toEqual(replicas.map(([name]) => `${name}:8601`).sort());
    expect(prometheus.rule_files).toEqual(['alerts.yml']);
    for (const service of ['postgres', 'nats', 'lb', 'prometheus', 'grafana']) expect(compose.services).toHaveProperty(service);
    const haproxy = deploy('haproxy.cfg');
    for (const [name] of replicas) expect(haproxy).toContain(`server ${name} ${name}:8600`);
  });
});
