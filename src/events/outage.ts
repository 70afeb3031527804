import type { Logger } from '../observability/logger.js';

/**
 * Logs a failure once when it starts and once when it ends, however many retries happen in
 * between: a NATS or database outage must not flood the log with one line per poll.
 */
export class OutageLog {
  private since: number | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly what: string,
  ) {}

  get down(): boolean {
    return this.since !== null;
  }

  failed(error: unknown, message: string): void {
    if (this.since !== null) {
      this.logger.debug({ err: error, what: this.what }, message);
      return;
    }
    this.since = Date.now();
    this.logger.warn({ err: error, what: this.what }, message);
  }

  recovered(message: string): void {
    if (this.since === null) return;
    this.logger.info({ what: this.what, downMs: Date.now() - this.since }, message);
    this.since = null;
  }
}
