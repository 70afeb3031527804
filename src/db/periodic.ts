import type pg from 'pg';
import type { Logger } from '../observability/logger.js';

/**
 * Runs `work` every `intervalMs` on this replica, never two runs at once; a failed run is logged
 * and the next interval tries again. An interval of 0 or less means never.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly what: string,
    private readonly intervalMs: number,
    private readonly work: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.work()
        .then(() => undefined)
        .catch((error: unknown) => this.logger.warn({ err: error }, `${this.what} failed; trying again next interval`))
        .finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a run under way. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

/**
 * Runs `work` on one connection holding the session advisory lock `key`, so only one replica at
 * a time does it. Returns undefined, without running it, when another session holds the lock.
 */
export async function whileHoldingLock<T>(pool: pg.Pool, key: number, work: (conn: pg.PoolClient) => Promise<T>): Promise<T | undefined> {
  const conn = await pool.connect();
  try {
    const locked = await conn.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
    if (!locked.rows[0]?.ok) return undefined;
    try {
      return await work(conn);
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1)', [key]);
    }
  } finally {
    conn.release();
  }
}
