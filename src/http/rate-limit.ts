/**
 * Token bucket per caller: a minute's worth of tokens, refilled continuously, so a caller may
 * burst up to its whole minute and then proceeds at the steady rate. Kept in memory per replica;
 * the limit holds for the deployment because each replica enforces its share of it: the limit
 * divided by the replicas alive (`replicas`, from the replica heartbeats). With calls spread over
 * the replicas (a load balancer), a caller gets about the limit in total, whatever their number;
 * one pinned to a single replica gets that replica's share. For a heartbeat interval after a
 * replica joins, the others still count without it (the total may reach limit x (N+1)/N); after
 * one dies, the rest count it until it is declared dead (the total is lower, never higher).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedAt: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
    private readonly maxTracked = 100_000,
    private readonly replicas: () => number = () => 1,
  ) {}

  /** This replica's share of the limit: at least one call a minute. */
  private capacity(): number {
    return Math.max(1, this.perMinute / Math.max(1, this.replicas()));
  }

  /** Takes one token; returns 0 when allowed, else the seconds to wait before one is free. */
  take(key: string): number {
    const wait = this.refill(key);
    if (wait > 0) return wait;
    this.buckets.get(key)!.tokens -= 1;
    return 0;
  }

  /** The seconds to wait before `key` may call again (0: it may now), without taking a token. */
  check(key: string): number {
    return this.refill(key);
  }

  private refill(key: string): number {
    const now = this.now();
    const capacity = this.capacity();
    let bucket = this.buckets.get(key);
    if (bucket) {
      // Map order is the eviction order: a bucket in use moves to the young end.
      this.buckets.delete(key);
      this.buckets.set(key, bucket);
    } else {
      bucket = { tokens: capacity, updatedAt: now };
      this.remember(key, bucket);
    }
    const refillPerMs = capacity / 60_000;
    // A clock stepped back (NTP) neither takes tokens away nor, later, refills the same time twice.
    if (now > bucket.updatedAt) {
      bucket.tokens += (now - bucket.updatedAt) * refillPerMs;
      bucket.updatedAt = now;
    }
    // A share that shrank (a replica joined) caps what was saved up under the larger one.
    bucket.tokens = Math.min(capacity, bucket.tokens);
    if (bucket.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerMs / 1000));
  }

  /** Bounded memory: when full, forget the bucket used least recently (Map keeps insertion order). */
  private remember(key: string, bucket: { tokens: number; updatedAt: number }): void {
    if (this.buckets.size >= this.maxTracked) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    this.buckets.set(key, bucket);
  }
}
