import { BackgroundService } from '../background/service.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { foldAgentReleases, foldScopeCounters } from './queue-metrics.queries.js';

export interface FoldedCounters {
  /** Scope counter rows folded away. */
  scopeRows: number;
  /** Agents whose releases were folded into active_tasks. */
  agents: number;
}

/**
 * Keeps the counters that writers add to without waiting short. The scope counters' triggers
 * append a change per statement, and this folds each key's committed changes into one row, so a
 * scrape sums a few rows per key, not a second's worth of changes. Agents' releases (migration
 * 0022) are folded into their active_tasks, passing over rows an assignment batch holds, so the
 * column a person reads stays about a second behind at most. Only the replica that `leads` (the
 * due-timer lease's holder) folds: every replica folding every second cost each of the others two
 * statements a second for nothing (the scope counters' fold takes a transaction advisory lock,
 * and the releases were already folded). A leader lost is replaced at the next replica's safety
 * pass; the counters only lag meanwhile, reads add up unfolded rows.
 */
export class CounterFolding extends BackgroundService<FoldedCounters> {
  constructor(
    private readonly db: Db,
    intervalMs: number,
    private readonly leads: () => boolean,
    logger: Logger,
  ) {
    super('counter folding', { intervalMs }, logger);
  }

  async runOnce(): Promise<FoldedCounters> {
    if (!this.leads()) return { scopeRows: 0, agents: 0 };
    return { scopeRows: await foldScopeCounters(this.db), agents: await foldAgentReleases(this.db) };
  }
}
