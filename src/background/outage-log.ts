import type { Logger } from '../observability/logger.js';

/**
 * Logs a failure once when it starts and once when it ends, however many retries happen in
 * between: a NATS, Warren or database outage must not flood the log with one line per poll.
 */
export class OutageLog {
  private since: number | null = null;

  constructor(
    private readonly logger: Logger,
    /** The dependency that is down, logged as `service`. */
    private readonly service: string,
    private readonly now: () => number = Date.now,
  ) {}

  get down(): boolean {
    return this.since !== null;
  }

  failed(error: unknown, message: string): void {
    // Integration errors carry a `reason` (timeout, server_error...) worth a field of its own.
    const reason = (error as { reason?: unknown } | null)?.reason;
    const fields = { err: error, service: this.service, ...(typeof reason === 'string' ? { reason } : {}) };
    if (this.since !== null) {
      this.logger.debug(fields, message);
      return;
    }
    this.since = this.now();
    this.logger.warn(fields, message);
  }

  recovered(message: string): void {
    if (this.since === null) return;
    this.logger.info({ service: this.service, downMs: this.now() - this.since }, message);
    this.since = null;
  }
}
