/** Per-address token buckets for request rates; idle addresses are evicted so memory stays bounded. */

export interface RateLimiterOptions {
  /** Tokens added per second (sustained requests per second). */
  ratePerSecond: number;
  /** Bucket capacity (requests allowed in a burst). */
  burst: number;
  /** Milliseconds clock; injected so tests can fake time. */
  now: () => number;
  /** Hard cap on tracked addresses; the least recently seen is evicted beyond it. */
  maxTrackedAddresses?: number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly ratePerMillisecond: number;
  private readonly burst: number;
  private readonly now: () => number;
  private readonly maxTrackedAddresses: number;
  /** A bucket left alone this long is full again, so forgetting it changes no decision. */
  private readonly refillMs: number;
  private lastSweepAt: number;

  constructor(options: RateLimiterOptions) {
    if (!(options.ratePerSecond > 0) || !(options.burst >= 1)) {
      throw new Error('rate limiter needs ratePerSecond > 0 and burst >= 1');
    }
    this.ratePerMillisecond = options.ratePerSecond / 1000;
    this.burst = options.burst;
    this.now = options.now;
    this.maxTrackedAddresses = options.maxTrackedAddresses ?? 100_000;
    this.refillMs = Math.ceil(this.burst / this.ratePerMillisecond);
    this.lastSweepAt = this.now();
  }

  /** Takes one token for `address`, or says how many whole seconds until one is available. */
  take(address: string): RateDecision {
    const now = this.now();
    this.sweepIfDue(now);
    let bucket = this.buckets.get(address);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxTrackedAddresses) this.evictLeastRecent();
      bucket = { tokens: this.burst, updatedAt: now };
    } else {
      // Re-insert so Map order is least-recently-seen first, which is what eviction relies on.
      this.buckets.delete(address);
      const elapsed = Math.max(0, now - bucket.updatedAt);
      bucket.tokens = Math.min(this.burst, bucket.tokens + elapsed * this.ratePerMillisecond);
      bucket.updatedAt = now;
    }
    this.buckets.set(address, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    const waitMs = (1 - bucket.tokens) / this.ratePerMillisecond;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
  }

  /** Drops the bucket of `address` (a key that turned out not to deserve one). */
  forget(address: string): void {
    this.buckets.delete(address);
  }

  get trackedAddresses(): number {
    return this.buckets.size;
  }

  private sweepIfDue(now: number): void {
    if (now - this.lastSweepAt < this.refillMs) return;
    this.lastSweepAt = now;
    for (const [address, bucket] of this.buckets) {
      if (now - bucket.updatedAt >= this.refillMs) this.buckets.delete(address);
    }
  }

  private evictLeastRecent(): void {
    const oldest = this.buckets.keys().next();
    if (!oldest.done) this.buckets.delete(oldest.value);
  }
}
