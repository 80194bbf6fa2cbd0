/** Specification of the per-address token buckets, with a fake clock. */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/http/rate-limiter.js';

describe('http rate limiter', () => {
  it('allows a burst, then refuses with the whole seconds until the next token', () => {
    let now = 0;
    const limiter = new RateLimiter({ ratePerSecond: 2, burst: 3, now: () => now });
    expect([1, 2, 3].map(() => limiter.take('a').allowed)).toEqual([true, true, true]);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    now += 500;
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('b').allowed).toBe(true);
  });

  it('forget drops one key: its next request starts from a full bucket', () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 2, now: () => 0 });
    limiter.take('credential x');
    limiter.take('credential x');
    limiter.take('a');
    expect(limiter.take('credential x').allowed).toBe(false);
    limiter.forget('credential x');
    expect(limiter.trackedAddresses).toBe(1);
    expect(limiter.take('credential x').allowed).toBe(true);
  });

  it('forgets addresses once their bucket would be full again', () => {
    let now = 0;
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 5, now: () => now });
    for (let i = 0; i < 1000; i += 1) limiter.take(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.trackedAddresses).toBe(1000);
    now += 1_000;
    limiter.take('192.0.2.1');
    expect(limiter.trackedAddresses).toBe(1);
  });

  it('never tracks more than maxTrackedAddresses, evicting the least recently seen', () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 1, now: () => 0, maxTrackedAddresses: 3 });
    limiter.take('a');
    limiter.take('b');
    limiter.take('c');
    expect(limiter.take('a').allowed).toBe(false);
    limiter.take('d');
    expect(limiter.trackedAddresses).toBe(3);
    // 'b' was the least recently seen, so it was forgotten and starts again with a full bucket;
    // 'a' was seen more recently and is still limited.
    expect(limiter.take('b').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('never allows more than burst + rate * elapsed requests', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 200 }),
        (ratePerSecond, burst, steps) => {
          let now = 0;
          const limiter = new RateLimiter({ ratePerSecond, burst, now: () => now });
          let allowed = 0;
          for (const step of steps) {
            now += step;
            if (limiter.take('x').allowed) allowed += 1;
          }
          return allowed <= burst + (ratePerSecond * now) / 1000 + 1e-9;
        },
      ),
    );
  });
});
