import { requestAssignment } from '../assignment/assignment.queries.js';
import { BackgroundService } from '../background/service.js';
import { DEADLINE_NOTICE_WITHIN_MS } from '../db/contract.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RetryPolicy } from '../tasks/task.queries.js';
import { expireUnstartedTasks, readNextDueInMs, type TimedOut, timeOutDueAttempts } from './due.queries.js';

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
  /** Most tasks expired, and most attempts timed out, per statement; a full batch runs the next pass at once. */
  expireBatch?: number;
  /** Backoff of a timed-out attempt that has retries left. */
  retry: RetryPolicy;
}

/** A pass that found an expiry it could not take (an assigner held the row) looks again this soon. */
const HELD_ROW_RETRY_MS = 10;

interface PassResult {
  expired: number;
  timedOut: number;
  leading: boolean;
  /** Milliseconds to the next due instant on the database's clock; null when nothing waits or another replica leads. */
  nextDueInMs: number | null;
}

/**
 * Wakes the replica holding the lease at the instant the next task becomes due (run_at, end of a
 * retry backoff) or expires (start_by), or the next attempt reaches its deadline (timeout_ms,
 * heartbeat_timeout_ms): one timer, whatever the number of waiting tasks, armed from the database
 * (migrations 0012, 0023). A pass expires what is past start_by, times out the attempts past their
 * deadline, asks for an assignment pass (dispatch_request_assignment: one NOTIFY, whoever asks)
 * and arms for the next instant, never more than DEADLINE_NOTICE_WITHIN_MS ahead: an assignment
 * announces only deadlines sooner than that. `notify(due)` is fed by LISTEN dispatch_due: a time
 * earlier than the one armed cuts the wait short. The other replicas make only the safety passes,
 * every safetyIntervalMs, each expiring and timing out what is past and trying to take the lease:
 * if its holder dies, due work waits at most that long. Restarts lose nothing (the times are in
 * the rows), and a lost NOTIFY costs at most DEADLINE_NOTICE_WITHIN_MS.
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
      const expired = await expireUnstartedTasks(this.db, this.batch);
      if (expired.length > 0) {
        this.metrics.taskTransitions.inc({ event: 'expired' }, expired.length);
        this.logger.info({ tasks: expired.length }, 'tasks expired: not assigned by their start_by');
      }
      const timedOut = await timeOutDueAttempts(this.db, this.options.retry, this.batch);
      if (timedOut.length > 0) this.countTimeouts(timedOut);
      await requestAssignment(this.db);
      return {
        expired: expired.length,
        timedOut: timedOut.length,
        leading,
        nextDueInMs: leading ? await readNextDueInMs(this.db) : null,
      };
    } finally {
      this.passing = false;
    }
  }

  private get batch(): number {
    return this.options.expireBatch ?? 500;
  }

  private countTimeouts(timedOut: TimedOut[]): void {
    const retried = timedOut.filter((t) => t.status === 'pending').length;
    if (retried > 0) this.metrics.taskTransitions.inc({ event: 'timeout_retry' }, retried);
    if (retried < timedOut.length) this.metrics.taskTransitions.inc({ event: 'timeout_exhausted' }, timedOut.length - retried);
    this.logger.info({ attempts: timedOut.length, retried }, 'attempts timed out: past their deadline');
  }

  protected override delayAfter(result: PassResult | undefined): number {
    let delay = result?.leading ? Math.min(this.options.safetyIntervalMs, DEADLINE_NOTICE_WITHIN_MS) : this.options.safetyIntervalMs;
    if (result && this.notifiedDuringPass) delay = 0;
    else if (result && (result.expired === this.batch || result.timedOut === this.batch)) delay = 0;
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
