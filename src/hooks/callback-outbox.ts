/**
 * Delivers the store's callback outbox (drain-complete callbacks): every gateway instance runs a pass
 * on its tick, and the store hands each due entry to one claimer at a time, so a callback is delivered
 * by whichever instance is alive, even when the one that drained the node died before sending it.
 *
 * A pass claims due entries with a lease (the store hides them from other claimers until it runs
 * out), POSTs each once with `Idempotency-Key: <entry id>`, then completes it (2xx), reschedules it
 * (408, 429, 5xx, network error or timeout: after the answer's Retry-After when it names one, else
 * exponential backoff with jitter; both bounded by `maxDelayMs`) or gives it up (any other 4xx, or the
 * last of `attempts`): a given-up entry is removed from the store and reported as failed. A claimer
 * that dies mid-POST leaves its entries to be claimed again once the lease runs out, so a receiver may
 * see one callback twice, with the same Idempotency-Key. Without a URL entries are completed unsent.
 */
import type { Clock } from '../clock.js';
import type { OutboxEntry, StateStore } from '../state/state-store.js';
import { postOnce } from './outbound-post.js';

export type OutboxOutcome = 'delivered' | 'retried' | 'failed' | 'skipped';

export interface CallbackOutboxOptions {
  store: Pick<StateStore, 'claimOutbox' | 'completeOutbox' | 'retryOutbox'>;
  /** Where drain-complete callbacks go; '' completes entries without sending anything. */
  url: string;
  clock: Clock;
  /** Per attempt. */
  timeoutMs: number;
  /** The wait after the first failed attempt; doubled after each further one, with jitter. */
  backoffMs: number;
  /** Bound on any wait between attempts, a Retry-After included. */
  maxDelayMs: number;
  /** Attempts (claims) per entry before it is given up. */
  attempts: number;
  /** Entries one pass claims at most (default 16). */
  batchSize?: number;
  random?: () => number;
  onResult?: (entry: OutboxEntry, outcome: OutboxOutcome, detail: string) => void;
}

const defaultBatchSize = 16;

/** The callback's JSON body: what the orchestrator has always received. */
export function callbackBody(entry: OutboxEntry): unknown {
  return { event: entry.kind, node: entry.node };
}

export class CallbackOutbox {
  /**
   * How long a claim hides its entries: longer than one attempt (the POSTs of a pass run side by
   * side, each within `timeoutMs`) plus the store calls around it.
   */
  readonly leaseMs: number;
  private readonly options: CallbackOutboxOptions;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(options: CallbackOutboxOptions) {
    this.options = options;
    this.leaseMs = 2 * options.timeoutMs + 1_000;
  }

  /** One pass: claims the entries due now and attempts each once. A pass already running is joined. */
  deliverDue(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Starts no further pass; waits for the running one up to `graceMs` (what it leaves comes back). */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.running.catch(() => undefined),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private async pass(): Promise<void> {
    const { store, clock } = this.options;
    const entries = await store.claimOutbox(
      clock.now(),
      this.leaseMs,
      this.options.batchSize ?? defaultBatchSize,
    );
    const settled = await Promise.allSettled(entries.map((entry) => this.attempt(entry)));
    const failure = settled.find((result) => result.status === 'rejected');
    // A store call that failed leaves its entry claimed: it comes back once the lease runs out.
    if (failure) throw failure.reason;
  }

  private async attempt(entry: OutboxEntry): Promise<void> {
    const { store, clock, url } = this.options;
    if (!url) {
      await store.completeOutbox(entry.id);
      this.options.onResult?.(entry, 'skipped', 'no callback URL configured');
      return;
    }
    const outcome = await postOnce({
      url,
      body: callbackBody(entry),
      headers: { 'idempotency-key': entry.id },
      timeoutMs: this.options.timeoutMs,
    });
    if (outcome.kind === 'delivered') {
      await store.completeOutbox(entry.id);
      this.options.onResult?.(entry, 'delivered', `${outcome.detail} after ${entry.attempts} attempt(s)`);
      return;
    }
    if (outcome.kind === 'refused' || entry.attempts >= this.options.attempts) {
      await store.completeOutbox(entry.id);
      this.options.onResult?.(
        entry,
        'failed',
        `${outcome.detail}; given up after ${entry.attempts} attempt(s)`,
      );
      return;
    }
    const delayMs = Math.min(this.options.maxDelayMs, outcome.retryAfterMs ?? this.backoffMs(entry.attempts));
    const rescheduled = await store.retryOutbox(
      entry.id,
      entry.attempts,
      clock.now() + delayMs,
      outcome.detail,
    );
    // Not rescheduled: the lease ran out during the attempt and another claim owns the entry now.
    if (rescheduled) {
      this.options.onResult?.(
        entry,
        'retried',
        `${outcome.detail}; next attempt in ${Math.round(delayMs)} ms`,
      );
    }
  }

  private backoffMs(attempts: number): number {
    const random = this.options.random ?? Math.random;
    return this.options.backoffMs * 2 ** (attempts - 1) * (0.5 + random());
  }
}
