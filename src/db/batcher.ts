import { isDatabaseUnavailable } from './unavailable.js';

export interface BatcherOptions<In> {
  /** Batches at the database at once; the rest of the pool stays free for other queries (default 2). */
  maxInFlight?: number;
  /** Upper bound on one statement's rows (and its parameter; default 250). */
  maxBatch?: number;
  /**
   * Upper bound on one statement's payload, for items that may be large (up to the request body
   * limit each): a batch stops before the item that would take it past `max` (a single item
   * always goes). Without it, 250 results of 1 MiB would be one 250 MiB parameter.
   */
  weight?: { of: (item: In) => number; max: number };
  /**
   * The shortest time between the starts of two batches (default 0). Under load a batch then
   * waits for the rest of it, gathering what arrives meanwhile, unless it is full already; a call
   * arriving after a quiet spell longer than this is still sent at once. For calls off the path a
   * latency figure is read on, where fewer, larger statements leave the cores to those on it.
   */
  minIntervalMs?: number;
}

/**
 * Group commit: calls that arrive while earlier ones are still at the database go to it
 * together, as one statement. Per-statement costs (a round trip, trigger calls, a WAL flush at
 * commit) are then paid once per batch instead of once per call.
 *
 * With nothing in flight a call is sent at once, alone (within `minIntervalMs` of the last
 * batch's start, when it is set), so a lone call pays no extra latency; batches only form under
 * load, where they replace a queue for pool connections. A batch the database refuses is retried
 * item by item, so one bad row never fails its neighbours.
 */
export class Batcher<In, Out> {
  private readonly queue: Array<{ item: In; resolve: (out: Out) => void; reject: (error: unknown) => void }> = [];
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly maxBatch: number;
  private readonly weight: BatcherOptions<In>['weight'];
  private readonly minIntervalMs: number;
  private lastStart = Number.NEGATIVE_INFINITY;
  private intervalTimer: NodeJS.Timeout | null = null;

  constructor(
    /** Runs one batch; returns one output per input, in order. */
    private readonly run: (items: In[]) => Promise<Out[]>,
    options: BatcherOptions<In> = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? 2;
    this.maxBatch = options.maxBatch ?? 250;
    this.weight = options.weight;
    this.minIntervalMs = options.minIntervalMs ?? 0;
  }

  submit(item: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const wait = this.lastStart + this.minIntervalMs - performance.now();
      if (wait > 0 && this.queue.length < this.maxBatch) {
        this.intervalTimer ??= setTimeout(() => {
          this.intervalTimer = null;
          this.pump();
        }, wait);
        return;
      }
      if (this.intervalTimer) clearTimeout(this.intervalTimer);
      this.intervalTimer = null;
      this.lastStart = performance.now();
      const batch = this.queue.splice(0, this.nextBatchLength());
      this.inFlight += 1;
      void this.write(batch);
    }
  }
  /** How many queued items the next batch takes: at most maxBatch, and within the weight cap. */
  private nextBatchLength(): number {
    const limit = Math.min(this.maxBatch, this.queue.length);
    if (!this.weight) return limit;
    let total = 0;
    for (let n = 0; n < limit; n++) {
      total += this.weight.of(this.queue[n]!.item);
      if (n > 0 && total > this.weight.max) return n;
    }
    return limit;
  }

  /** Frees the batch's slot and sends what queued meanwhile. */
  private release(): void {
    this.inFlight -= 1;
    this.pump();
  }

  private async write(batch: Batcher<In, Out>['queue']): Promise<void> {
    let outputs: Out[];
    try {
      outputs = await this.run(batch.map((entry) => entry.item));
    } catch (error) {
      await this.isolate(batch, error);
      this.release();
      return;
    }
    // Send the next batch before answering this one: answering runs every caller's continuation
    // (serialising and writing each response), and the database would sit idle meanwhile.
    this.release();
    batch.forEach((entry, i) => entry.resolve(outputs[i]!));
  }

  /** A failed batch: find the rows the database refuses, so one bad row never fails the others. */
  private async isolate(batch: Batcher<In, Out>['queue'], error: unknown): Promise<void> {
    // With the database unreachable every retry would fail too (and wait for a connection first),
    // so the whole batch fails at once.
    if (batch.length === 1 || isDatabaseUnavailable(error)) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    await Promise.all(
      batch.map(async (entry) => {
        try {
          entry.resolve((await this.run([entry.item]))[0]!);
        } catch (alone) {
          entry.reject(alone);
        }
      }),
    );
  }
}
