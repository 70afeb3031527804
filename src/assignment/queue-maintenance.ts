import type pg from 'pg';
import { BackgroundService } from '../background/service.js';
import { whileHoldingLock } from '../db/advisory-lock.queries.js';
import { ADVISORY_LOCK } from '../db/contract.js';
import { GRAPHILE_JOBS_TABLE } from '../jobs/graphile-worker.queries.js';
import type { Logger } from '../observability/logger.js';
import { findTablesWithDeadTuples, vacuumTable } from './queue-maintenance.queries.js';

/**
 * The tables whose rows churn with every task: a task row is rewritten at each transition, an
 * outbox row lives until published, an agent row changes with its load and its releases row with
 * every task it finishes; graphile-worker's jobs come and go with wakes and scheduled passes.
 */
export const HOT_TABLES = ['public.dispatch_tasks', 'public.dispatch_agents', 'public.dispatch_agent_releases', 'public.dispatch_event_outbox', GRAPHILE_JOBS_TABLE];

export interface QueueMaintenanceOptions {
  /** How often to look at dead tuples; 0 turns the maintenance off. */
  intervalMs: number;
  /** A hot table is vacuumed once it holds more dead tuples than this. */
  deadTuples: number;
  /**
   * A table whose vacuum took T is left alone for restFactor x T after it (default 9: at most a
   * tenth of the time spent vacuuming any one table).
   */
  restFactor?: number;
  /** Whether this replica leads (holds the due-timer lease); only the leader looks. Always, when absent. */
  leads?: () => boolean;
}

/**
 * Vacuums the queue's hot tables when dead tuples pile up, instead of waiting for autovacuum.
 *
 * Why: every claim walks the pending index from its oldest entry, and each task it places
 * leaves a dead entry right there. Until a vacuum removes them, each claim steps over all of
 * them again. Autovacuum visits a database at most once per autovacuum_naptime (60 s by
 * default) and may be off altogether (it is on the machine the benchmark ran on). Measured over
 * 10 minutes of sustained assignment without any vacuum: 2.1 M dead tuples, the pending index
 * grew from 8 kB to 82 MB, a claim of 500 went from ~10 ms to ~100 ms, and assignments/s fell to
 * 59% (docs/BENCHMARKS.md, "Assignment"). Vacuuming at a threshold keeps all of it flat.
 *
 * Only the replica that leads looks, so the swarm looks once per interval however many replicas
 * it has: with every replica looking (each taking turns on the advisory lock), 3 replicas looked
 * three times as often as 1 and vacuumed `dispatch_tasks` in the middle of a drain as soon as it
 * crossed the threshold, and 3 replicas drained a 100 k backlog at 0.82-0.92x of 1 in four of
 * five back-to-back pairs (docs/BENCHMARKS.md, session 35). A leader lost is replaced at another
 * replica's next safety pass; the lock still keeps two from vacuuming at once meanwhile.
 *
 * A vacuum of `dispatch_tasks` reads every page of every index holding every task (primary key,
 * created, requester, assignee, completed), however few tasks changed: its cost grows with the
 * history kept, not with the work (at 1.4 M rows, 0.24 s on the first pass and 2.9 s on the
 * tenth, docs/BENCHMARKS.md, session 36; a week of history would take minutes). So a table rests
 * for restFactor times its last vacuum's duration before the next: vacuuming stays a bounded share
 * of the time on a large table, while the small hot tables, vacuumed in milliseconds, keep their
 * interval.
 */
export class QueueMaintenance extends BackgroundService<string[]> {
  /** When each table vacuumed here may be vacuumed again, on `now`'s clock. */
  private readonly restingUntil = new Map<string, number>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: QueueMaintenanceOptions,
    logger: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {
    super('queue maintenance', options, logger);
  }

  /**
   * One look, if this replica leads and no other is at it: vacuums each hot table above the
   * threshold that is not resting. Returns the tables vacuumed (empty when it does not lead,
   * another replica holds the lock, or nothing is needed).
   */
  async runOnce(): Promise<string[]> {
    if (this.options.leads && !this.options.leads()) return [];
    const restFactor = this.options.restFactor ?? 9;
    const vacuumed = await whileHoldingLock(this.pool, ADVISORY_LOCK.queueMaintenance, async (conn) => {
      const done: string[] = [];
      for (const table of await findTablesWithDeadTuples(conn, HOT_TABLES, this.options.deadTuples)) {
        if ((this.restingUntil.get(table.name) ?? -Infinity) > this.now()) continue;
        const started = this.now();
        await vacuumTable(conn, table.name);
        const ended = this.now();
        const restMs = (ended - started) * restFactor;
        this.restingUntil.set(table.name, ended + restMs);
        done.push(table.name);
        this.logger.debug({ table: table.name, deadTuples: table.dead, ms: Math.round(ended - started), restMs: Math.round(restMs) }, 'vacuumed');
      }
      return done;
    });
    return vacuumed ?? [];
  }
}
