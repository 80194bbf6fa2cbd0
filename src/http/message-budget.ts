/**
 * One WebSocket's message budget: a token bucket of `burst` messages refilled at `ratePerSecond`. Every
 * frame a client sends spends one, whatever it holds, so a flooding socket is found before its frames
 * cost any parsing; the socket that overspends is closed by its owner (`ws-sessions.ts`).
 */

export interface MessageBudgetLimits {
  /** Messages per second a socket may send, sustained. */
  ratePerSecond: number;
  /** Messages a socket may send at once; a new socket starts with a full bucket. */
  burst: number;
}

/** Throws unless the limits describe a budget that can ever be spent. */
export function checkMessageBudgetLimits(limits: MessageBudgetLimits): void {
  if (!(limits.ratePerSecond > 0) || !(limits.burst >= 1)) {
    throw new Error('a WebSocket message budget needs a rate above 0 per second and a burst of at least 1');
  }
}

export class MessageBudget {
  private readonly ratePerMillisecond: number;
  private readonly burst: number;
  private tokens: number;
  private updatedAt: number;

  /** Starts full at `now` (milliseconds); `limits` passed `checkMessageBudgetLimits`. */
  constructor(limits: MessageBudgetLimits, now: number) {
    this.ratePerMillisecond = limits.ratePerSecond / 1000;
    this.burst = limits.burst;
    this.tokens = limits.burst;
    this.updatedAt = now;
  }

  /** Spends one message at `now`; false when the budget is spent (nothing is taken then). */
  spend(now: number): boolean {
    // A clock that stepped back refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerMillisecond);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
