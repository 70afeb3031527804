import type { Db } from '../db/database.js';
import { readOldestPending, readScopeCounts } from '../tasks/queue-metrics.queries.js';
import { scopeWaitReason } from './scope-limits.js';
import { readScopeControls, readScopeUsage, type ScopeControlsRow } from './scope.queries.js';
import type { ScopeView } from './scope.schemas.js';

export type { ScopeView };

/**
 * Every scope that has had open tasks or has controls, or just `only`: read from the counters
 * (migration 0008), one index probe per scope for the oldest pending task, and dispatch_scopes;
 * never a pass over the task table, so it costs the same at 1 M tasks as at 10.
 */
export async function scopeOverview(db: Db, only?: string): Promise<ScopeView[]> {
  const [counts, oldest, controls] = await Promise.all([readScopeCounts(db), readOldestPending(db), readScopeControls(db, only)]);
  const rated = await readScopeUsage(db, controls.filter((c) => c.max_starts_per_minute !== null));
  const views = new Map<string, ScopeView>();
  const view = (scope: string): ScopeView => {
    let v = views.get(scope);
    if (!v) {
      v = {
        scope,
        depth: { pending: 0, assigned: 0, running: 0 },
        oldest_pending_seconds: 0,
        paused: false,
        max_running: null,
        max_starts_per_minute: null,
        starts_last_minute: null,
        held_because: null,
        changed_at: null,
        changed_by: null,
      };
      views.set(scope, v);
    }
    return v;
  };
  const wanted = (scope: string) => only === undefined || scope === only;
  if (only !== undefined) view(only);
  for (const c of counts) if (wanted(c.scope)) view(c.scope).depth[c.status as keyof ScopeView['depth']] = c.tasks;
  for (const o of oldest) if (wanted(o.scope)) view(o.scope).oldest_pending_seconds = o.seconds;
  for (const c of controls) applyControls(view(c.scope), c);
  for (const r of rated) view(r.scope).starts_last_minute = r.starts;
  for (const v of views.values()) {
    v.held_because = scopeWaitReason({
      scope: v.scope,
      paused: v.paused,
      maxRunning: v.max_running,
      running: v.depth.assigned + v.depth.running,
      maxStartsPerMinute: v.max_starts_per_minute,
      starts: v.starts_last_minute ?? 0,
      oldestStartAt: null,
    });
  }
  return [...views.values()].sort((a, b) => (a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : 0));
}

function applyControls(v: ScopeView, c: ScopeControlsRow): void {
  v.paused = c.paused;
  v.max_running = c.max_running;
  v.max_starts_per_minute = c.max_starts_per_minute;
  v.changed_at = c.changed_at.toISOString();
  v.changed_by = c.changed_by;
}
