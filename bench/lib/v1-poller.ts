import { Assigner } from '../../src/assignment/assigner.js';
import type { DatabaseHandle } from '../../src/db/database.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';

/**
 * v1's scheduler, emulated: every `intervalMs` one pass places what is pending at that moment
 * and stops until the next tick — no wake-up on new work, no draining past the pass. The pass
 * itself is today's batched claim (Dispatch's own Assigner), not v1's per-task HTTP calls and
 * whole-row writes, so the emulation is generous to v1: only the schedule is v1's.
 *
 * Used with the database's instant wake-ups switched off and the replicas' tick set far out,
 * so this loop is the only thing that assigns.
 */
export class V1Poller {
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly assigner: Assigner;
  private readonly metrics = createMetrics();

  constructor(
    database: DatabaseHandle,
    private readonly options: { intervalMs: number; batchSize: number; defaultMaxConcurrent: number },
  ) {
    this.assigner = new Assigner(
      database.db,
      { api: database.pool, direct: database.pool },
      { batchSize: options.batchSize, defaultMaxConcurrent: options.defaultMaxConcurrent },
      createLogger({ level: 'warn' }),
      this.metrics,
    );
  }

  start(): void {
    this.loop = (async () => {
      let next = Date.now() + this.options.intervalMs;
      while (!this.stopped) {
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, 100)));
        if (this.stopped || Date.now() < next) continue;
        next += this.options.intervalMs;
        // One pass: batches until one comes back short (the queue as it was is placed).
        for (;;) {
          const batch = await this.assigner.assignBatch();
          if (batch.claimed < this.options.batchSize || batch.assigned === 0) break;
        }
      }
    })();
  }

  /** Mean duration of one of its assignment transactions, in ms. */
  async meanBatchMs(): Promise<number> {
    const { values } = await this.metrics.assignmentBatches.get();
    const sum = values.find((v) => v.metricName === 'dispatch_assignment_batch_seconds_sum')?.value ?? 0;
    const count = values.find((v) => v.metricName === 'dispatch_assignment_batch_seconds_count')?.value ?? 0;
    return count > 0 ? (sum / count) * 1_000 : Number.NaN;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
