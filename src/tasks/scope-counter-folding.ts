import { BackgroundService } from '../background/service.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import { foldScopeCounters } from './queue-metrics.queries.js';

/**
 * Keeps the scope counters short: the triggers append a change per statement (so writers never
 * wait on a shared counter row), and this folds each key's committed changes into one row, so a
 * scrape sums a few rows per key, not a second's worth of changes. One replica at a time does it
 * (a transaction advisory lock inside the SQL function); the others find nothing to do.
 */
export class ScopeCounterFolding extends BackgroundService<number> {
  constructor(
    private readonly db: Db,
    intervalMs: number,
    logger: Logger,
  ) {
    super('scope counter folding', { intervalMs }, logger);
  }

  async runOnce(): Promise<number> {
    return await foldScopeCounters(this.db);
  }
}
