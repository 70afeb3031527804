/**
 * Token bucket per agent: `perMinute` tokens, refilled continuously, so an agent may burst up to
 * its whole minute and then proceeds at the steady rate. Kept per replica, in memory: behind a
 * load balancer with N replicas an agent gets at most N times the limit.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedAt: number }>();
  private readonly refillPerMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
    private readonly maxTracked = 100_000,
  ) {
    this.refillPerMs = perMinute / 60_000;
  }

  /** Takes one token; returns 0 when allowed, else the seconds to wait before one is free. */
  take(key: string): number {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      // Map order is the eviction order: a bucket in use moves to the young end.
      this.buckets.delete(key);
      this.buckets.set(key, bucket);
    } else {
      bucket = { tokens: this.perMinute, updatedAt: now };
      this.remember(key, bucket);
    }
    // A clock stepped back (NTP) neither takes tokens away nor, later, refills the same time twice.
    if (now > bucket.updatedAt) {
      bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.updatedAt) * this.refillPerMs);
      bucket.updatedAt = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.refillPerMs / 1000));
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
