/**
 * Outbound calls to the orchestrator that live in this instance's memory (the autoscaler's scale
 * signals): POSTed in the background with retries, exponential backoff and jitter, a per-attempt
 * timeout and a bounded backlog, so no request path ever waits on an orchestrator. They die with the
 * instance; drain-complete callbacks, which must not, go through the store's outbox instead
 * (callback-outbox.ts).
 */
import { postOnce } from './outbound-post.js';

export interface OutboundCall {
  kind: 'scale-up' | 'scale-down';
  url: string;
  /** JSON body; undefined sends an empty POST (what a Heat alarm_url expects). */
  body?: unknown;
}

export interface OutboundCallsOptions {
  attempts: number;
  timeoutMs: number;
  backoffMs: number;
  queueLimit: number;
  random?: () => number;
  onResult?: (call: OutboundCall, outcome: 'delivered' | 'failed' | 'dropped', detail: string) => void;
}

export class OutboundCalls {
  private readonly options: OutboundCallsOptions;
  private readonly pending = new Set<Promise<void>>();
  /** Backoff waits in progress; closing ends them at once. */
  private readonly waits = new Map<NodeJS.Timeout, () => void>();
  private closed = false;

  constructor(options: OutboundCallsOptions) {
    this.options = options;
  }

  get backlog(): number {
    return this.pending.size;
  }

  /** Queues a call; returns at once. Past the backlog limit the call is dropped and reported. */
  send(call: OutboundCall): void {
    if (!call.url) return;
    if (this.closed || this.pending.size >= this.options.queueLimit) {
      this.options.onResult?.(call, 'dropped', this.closed ? 'shutting down' : 'backlog full');
      return;
    }
    const delivery = this.deliver(call).finally(() => this.pending.delete(delivery));
    this.pending.add(delivery);
  }

  /** Stops retrying; waits for in-flight attempts up to `graceMs`. */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    for (const [timer, resolve] of this.waits) {
      clearTimeout(timer);
      resolve();
    }
    this.waits.clear();
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.pending]),
      new Promise((resolve) => {
        grace = setTimeout(resolve, graceMs);
      }),
    ]);
    // Calls that settled in time must not leave the grace timer holding the event loop open.
    clearTimeout(grace);
  }

  private async deliver(call: OutboundCall): Promise<void> {
    const random = this.options.random ?? Math.random;
    let detail = '';
    for (let attempt = 1; attempt <= this.options.attempts && !this.closed; attempt++) {
      const outcome = await postOnce({ url: call.url, body: call.body, timeoutMs: this.options.timeoutMs });
      if (outcome.kind === 'delivered') {
        this.options.onResult?.(call, 'delivered', `${outcome.detail} after ${attempt} attempt(s)`);
        return;
      }
      detail = outcome.detail;
      if (outcome.kind === 'refused') break;
      if (attempt < this.options.attempts) {
        const delay = this.options.backoffMs * 2 ** (attempt - 1) * (0.5 + random());
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.waits.delete(timer);
            resolve();
          }, delay);
          this.waits.set(timer, resolve);
        });
      }
    }
    this.options.onResult?.(call, 'failed', detail);
  }
}
