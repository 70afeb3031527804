import { requestAssignment } from '../assignment/assignment.queries.js';
import { BackgroundService } from '../background/service.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { expireUnstartedTasks, readNextDueInMs } from './due.queries.js';

/**
 * Which replica's timer wakes at due instants: one at a time (ADVISORY_LOCK.dueTimer, held on the
 * replica's LISTEN session, src/db/listener.ts). Every replica woken at every instant cost three
 * times the passes for one result, and made run_at late with three replicas on two cores.
 */
export interface DueTimerLease {
  holds(): boolean;
  /** Takes the lease if nobody holds it; true when this replica holds it now. */
  tryTake(): Promise<boolean>;
}

export interface DueTimerOptions {
  /** Longest wait between passes even when nothing is due: the safety net for a lost NOTIFY. */
  safetyIntervalMs: number;
  /** Most tasks expired per statement; a full batch runs the next pass at once. */
  expireBatch?: number;
}

/** A pass that found an expiry it could not take (an assigner held the row) looks again this soon. */
const HELD_ROW_RETRY_MS = 10;

interface PassResult {
  expired: number;
  /** Milliseconds to the next due instant on the database's clock; null when nothing waits or another replica leads. */
  nextDueInMs: number | null;
}

/**
 * Wakes the replica holding the lease at the instant the next task becomes due (run_at, end of a
 * retry backoff) or expires (start_by): one timer, whatever the number of waiting tasks, armed
 * from the database (migration 0012). A pass expires what is past start_by, asks for an
 * assignment pass (dispatch_request_assignment: one NOTIFY, whoever asks) and arms for the next
 * instant. `notify(due)` is fed by LISTEN dispatch_due: a time earlier than the one armed cuts the
 * wait short. The other replicas make only the safety passes, every safetyIntervalMs, each trying
 * to take the lease: if its holder dies, due work waits at most that long. Restarts lose nothing
 * (the times are in the rows), and a lost NOTIFY costs at most safetyIntervalMs.
 */
export class DueTimer extends BackgroundService<PassResult> {
  private armedAt: number | null = null;
  private passing = false;
  private notifiedDuringPass = false;

  constructor(
    private readonly db: Db,
    private readonly lease: DueTimerLease,
    private readonly options: DueTimerOptions,
    logger: Logger,
    private readonly metrics: Pick<Metrics, 'taskTransitions'>,
  ) {
    super('due timer', { intervalMs: options.safetyIntervalMs, runAtStart: true }, logger);
  }

  /**
   * A statement made a task due at `dueEpochMs` (database clock). Wake now if that is before the
   * armed instant; compared on this clock, so the allowance covers a skew of a second.
   */
  notify(dueEpochMs: number): void {
    if (!this.lease.holds()) return;
    if (this.passing) {
      // The pass may have read the next instant before this task committed: read again.
      this.notifiedDuringPass = true;
      return;
    }
    if (this.armedAt === null || !Number.isFinite(dueEpochMs) || dueEpochMs < this.armedAt + 1_000) this.nudge();
  }

  /**
   * The connection feeding notify() was (re)established: anything sent meanwhile was missed, and
   * the lease may be free (it went with a lost connection).
   */
  resync(): void {
    if (this.passing) this.notifiedDuringPass = true;
    else this.nudge();
  }

  async runOnce(): Promise<PassResult> {
    this.passing = true;
    this.notifiedDuringPass = false;
    try {
      const leading = this.lease.holds() || (await this.lease.tryTake());
      const expired = await expireUnstartedTasks(this.db, this.options.expireBatch ?? 500);
      if (expired.length > 0) {
        this.metrics.taskTransitions.inc({ event: 'expired' }, expired.length);
        this.logger.info({ tasks: expired.length }, 'tasks expired: not assigned by their start_by');
      }
      await requestAssignment(this.db);
      return { expired: expired.length, nextDueInMs: leading ? await readNextDueInMs(this.db) : null };
    } finally {
      this.passing = false;
    }
  }

  protected override delayAfter(result: PassResult | undefined): number {
    let delay = this.options.safetyIntervalMs;
    if (result && this.notifiedDuringPass) delay = 0;
    else if (result && result.expired === (this.options.expireBatch ?? 500)) delay = 0;
    else if (result?.nextDueInMs != null) {
      // +1: a timer may fire up to a millisecond early, and the claim compares with now().
      delay = Math.min(delay, result.nextDueInMs > 0 ? Math.ceil(result.nextDueInMs) + 1 : HELD_ROW_RETRY_MS);
      // (Zero or less is also a task that fell due during the read: this pass's assignment request
      // may have missed it by a millisecond, and the short retry catches it.)
    }
    this.armedAt = Date.now() + delay;
    return delay;
  }
}
