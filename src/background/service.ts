import type { Logger } from '../observability/logger.js';
import { OutageLog } from './outage-log.js';
import { Sleeper } from './sleeper.js';

export interface ServiceOptions {
  /** Pause between the end of one pass and the start of the next; 0 or less: start() does nothing. */
  intervalMs: number;
  /** The first pass runs as start() is called rather than one interval later. Default false. */
  runAtStart?: boolean;
  /** Blamed in the log (`service`) when a pass throws. Default: the service's name. */
  dependency?: string;
  /** Logged once when passes start failing. Default: "<name> failed; retrying every interval". */
  failureMessage?: string;
  /** Logged once when a pass succeeds after failures. Default: "<name> working again". */
  recoveryMessage?: string;
  /**
   * Where in [0, 1) the first wait is cut: it lasts (1 - phase / 2) of its delay. Default random,
   * so that loops of one interval, started together, do not run in step (below); tests pin it.
   */
  phase?: () => number;
}

/**
 * The one shape of Dispatch's background loops (after River's startstop services). `runOnce()`
 * is one pass, and what tests call; `start()` repeats it every interval, never two at once;
 * `stop()` cuts the wait short and resolves once the pass under way has finished. A pass that
 * throws is logged once per outage and the next interval tries again. Services that know better
 * when to run next (a full batch, a clock boundary) override `delayAfter`.
 */
export abstract class BackgroundService<Result = unknown> {
  protected readonly outage: OutageLog;
  private readonly sleeper = new Sleeper();
  private loop: Promise<void> | null = null;
  private stopping = false;
  /** A nudge came during the current pass: the next one follows it without a wait. */
  private nudged = false;

  protected constructor(
    /** Names the service in its log lines. */
    readonly name: string,
    private readonly serviceOptions: ServiceOptions,
    protected readonly logger: Logger,
    now?: () => number,
  ) {
    this.outage = new OutageLog(logger, serviceOptions.dependency ?? name, now);
  }

  /** One pass of the service's work. */
  abstract runOnce(): Promise<Result>;

  start(): void {
    if (this.loop || this.serviceOptions.intervalMs <= 0) return;
    this.stopping = false;
    this.loop = this.repeat();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.sleeper.wake();
    await this.loop;
    this.loop = null;
  }

  /**
   * Cuts the current wait short: the next pass starts now. During a pass, the next follows it at
   * once (the pass may have looked before whatever prompted the nudge).
   */
  nudge(): void {
    this.nudged = true;
    this.sleeper.wake();
  }

  /** True from stop() on, until the next start(). */
  protected get stopped(): boolean {
    return this.stopping;
  }

  /** The wait before the next pass; `result` is undefined before the first pass and after a failed one. */
  protected delayAfter(_result: Result | undefined): number {
    return this.serviceOptions.intervalMs;
  }

  /** One pass whose failure is logged (once per outage) instead of thrown. */
  protected async runLogged(): Promise<Result | undefined> {
    try {
      const result = await this.runOnce();
      this.outage.recovered(this.serviceOptions.recoveryMessage ?? `${this.name} working again`);
      return result;
    } catch (error) {
      if (!this.stopping) this.outage.failed(error, this.serviceOptions.failureMessage ?? `${this.name} failed; retrying every interval`);
      return undefined;
    }
  }

  /**
   * A replica starts its loops together, and replicas deployed together start theirs together:
   * loops of one interval (the 5 s ones, the 10 s ones) would then run their passes in the same
   * instant for ever, a burst of queries every few seconds that queued the assignment behind it
   * (docs/BENCHMARKS.md, session 21). The first wait is cut to a random 50-100% of itself, which
   * spreads the loops' phases; every later wait is the loop's own.
   */
  private async repeat(): Promise<void> {
    const phase = this.serviceOptions.phase ?? Math.random;
    let first = true;
    const spread = (delay: number) => {
      if (!first) return delay;
      first = false;
      return delay * (1 - phase() / 2);
    };
    if (!this.serviceOptions.runAtStart) await this.sleeper.sleep(spread(this.delayAfter(undefined)));
    while (!this.stopping) {
      this.nudged = false;
      const result = await this.runLogged();
      if (this.stopping) return;
      const delay = spread(this.delayAfter(result));
      if (delay > 0 && !this.nudged) await this.sleeper.sleep(delay);
    }
  }
}
