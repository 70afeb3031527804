import { Gauge, type Registry } from 'prom-client';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { readScopeControls, type ScopeControlsRow } from './scope.queries.js';

export interface ScopeMetricsOptions {
  db: Db;
  logger: Logger;
  /** metrics.max_scopes: at most this many scopes get series (paused ones first, then by name). */
  maxScopes: number;
}

/**
 * Scope controls as gauges, read from dispatch_scopes (one row per scope an operator touched) at
 * scrape time: dispatch_scope_paused, dispatch_scope_max_running, dispatch_scope_max_starts_per_minute.
 * A limit cannot be summed into an `other` series, so scopes past max_scopes are left out, paused
 * ones kept first. Cluster-wide, like the queue metrics: aggregate across replicas with max().
 */
export function registerScopeMetrics(registry: Registry, { db, logger, maxScopes }: ScopeMetricsOptions): void {
  let inFlight: Promise<ScopeControlsRow[] | null> | undefined;
  const read = (): Promise<ScopeControlsRow[] | null> => {
    inFlight ??= readScopeControls(db)
      .then((rows) => [...rows].sort((a, b) => Number(b.paused) - Number(a.paused)).slice(0, maxScopes))
      .catch((error: unknown) => {
        logger.warn({ err: error }, 'scope metrics: database read failed');
        return null;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  const gauges = [
    ['dispatch_scope_paused', 'Whether the scope is paused (1) or not (0), for scopes with controls.', (r: ScopeControlsRow) => Number(r.paused)],
    ['dispatch_scope_max_running', 'Most tasks of the scope assigned or running at once, where a limit is set.', (r: ScopeControlsRow) => r.max_running],
    ['dispatch_scope_max_starts_per_minute', 'Most assignments of the scope in any 60 s, where a limit is set.', (r: ScopeControlsRow) => r.max_starts_per_minute],
  ] as const;
  for (const [name, help, value] of gauges) {
    new Gauge({
      name,
      help,
      labelNames: ['scope'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const row of (await read()) ?? []) {
          const v = value(row);
          if (v !== null) this.set({ scope: row.scope }, v);
        }
      },
    });
  }
}
