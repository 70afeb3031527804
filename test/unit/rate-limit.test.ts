import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/http/rate-limit.js';

/** A clock the test moves by hand. */
function manualClock(start = 1_700_000_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
    set: (ms: number) => {
      now = ms;
    },
  };
}

/** How many calls in a row `key` gets before the first refusal. */
function burst(limiter: RateLimiter, key: string, max = 10_000): number {
  let allowed = 0;
  while (allowed < max && limiter.take(key) === 0) allowed++;
  return allowed;
}

describe('RateLimiter', () => {
  it('allows a burst of the whole minute, then refuses', () => {
    const clock = manualClock();
    const limiter = new RateLimiter(120, clock.now);
    expect(burst(limiter, 'a')).toBe(120);
    expect(limiter.take('a')).toBeGreaterThan(0);
  });

  it('says how long to wait: the time until one token is back, in whole seconds', () => {
    const clock = manualClock();
    const limiter = new RateLimiter(2, clock.now); // one token every 30 s
    expect(burst(limiter, 'a')).toBe(2);
    expect(limiter.take('a')).toBe(30);
    clock.advance(15_000);
    expect(limiter.take('a')).toBe(15);
    clock.advance(14_500);
    // Half a second left rounds up: a client that waits the advised time always gets through.
    expect(limiter.take('a')).toBe(1);
    clock.advance(500);
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(30);
  });

  it('never advises a wait of 0 seconds while refusing', () => {
    const clock = manualClock();
    const limiter = new RateLimiter(60_000, clock.now); // a token every millisecond
    expect(burst(limiter, 'a', 100_000)).toBe(60_000);
    expect(limiter.take('a')).toBe(1);
  });

  it('refills continuously at the steady rate, up to the burst size and no further', () => {
    const clock = manualClock();
    const limiter = new RateLimiter(60, clock.now); // one a second
    burst(limiter, 'a');
    clock.advance(10_000);
    expect(burst(limiter, 'a')).toBe(10);
    clock.advance(60 * 60_000);
    expect(burst(limiter, 'a')).toBe(60);
  });

  it('keeps each agent’s bucket apart', () => {
    const clock = manualClock();
    const limiter = new RateLimiter(3, clock.now);
    expect(burst(limiter, 'noisy')).toBe(3);
    expect(limiter.take('noisy')).toBeGreaterThan(0);
    expect(burst(limiter, 'quiet')).toBe(3);
  });

  it('holds a steady caller to the limit over a long run', () => {
    const clock = manualClock();
    const limiter = new RateLimiter(120, clock.now);
    let allowed = 0;
    // One attempt every 100 ms for 10 minutes: 6000 attempts, 120 + 10 * 120 may pass.
    for (let i = 0; i < 6000; i++) {
      if (limiter.take('steady') === 0) allowed++;
      clock.advance(100);
    }
    expect(allowed).toBeGreaterThanOrEqual(1319);
    expect(allowed).toBeLessThanOrEqual(1321);
  });

  it('does not take tokens away when the clock steps back', () => {
    const clock = manualClock(1_000_000);
    const limiter = new RateLimiter(60, clock.now);
    expect(burst(limiter, 'a', 30)).toBe(30);
    clock.set(1_000_000 - 120_000);
    expect(burst(limiter, 'a')).toBe(30);
  });

  it('bounds its memory by forgetting the least recently used agent', () => {
    const clock = manualClock();
    const limiter = new RateLimiter(1, clock.now, 3);
    for (const key of ['a', 'b', 'c']) expect(limiter.take(key)).toBe(0);
    // 'a' is used again (and refused), so 'b' is now the least recently used.
    expect(limiter.take('a')).toBeGreaterThan(0);
    expect(limiter.take('d')).toBe(0);
    // 'a' and 'c' and 'd' are remembered (still limited); 'b' was forgotten and starts afresh.
    expect(limiter.take('a')).toBeGreaterThan(0);
    expect(limiter.take('c')).toBeGreaterThan(0);
    expect(limiter.take('d')).toBeGreaterThan(0);
    expect(limiter.take('b')).toBe(0);
  });

  it('enforces this replica’s share of the limit: the limit divided by the replicas alive', () => {
    const clock = manualClock();
    let replicas = 3;
    const limiter = new RateLimiter(120, clock.now, 100, () => replicas);
    expect(burst(limiter, 'a')).toBe(40);
    clock.advance(30_000); // half a minute of a 40-a-minute share
    expect(burst(limiter, 'a')).toBe(20);
    replicas = 1;
    clock.advance(60_000);
    expect(burst(limiter, 'a')).toBe(120);
  });

  it('caps what was saved up when the share shrinks (a replica joined)', () => {
    const clock = manualClock();
    let replicas = 1;
    const limiter = new RateLimiter(120, clock.now, 100, () => replicas);
    expect(limiter.take('a')).toBe(0);
    replicas = 4;
    expect(burst(limiter, 'a')).toBe(30);
  });

  it('check() tells the wait without spending a token', () => {
    const clock = manualClock();
    const limiter = new RateLimiter(2, clock.now);
    expect(limiter.check('a')).toBe(0);
    expect(limiter.check('a')).toBe(0);
    expect(burst(limiter, 'a')).toBe(2);
    expect(limiter.check('a')).toBe(30);
  });
});
