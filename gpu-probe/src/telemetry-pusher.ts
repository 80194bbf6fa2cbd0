/**
 * Pushes samples to the gateway (`PUT /v1/nodes/:id/telemetry` with the node token). Only the newest
 * unsent sample is kept — a backlog of old samples is worthless — and a sample too old to be true is
 * dropped rather than sent, because the gateway takes a report's arrival time as its freshness.
 * Failures back off exponentially with jitter; a 4xx other than 408/429 is not retried.
 */
import type { Logger } from 'pino';
import { type TelemetrySample, toTelemetryDocument } from './telemetry-sample.js';

export type PushOutcome = 'accepted' | 'rejected' | 'failed' | 'dropped';

export interface TelemetryPusherOptions {
  vcaUrl: string;
  nodeId: string;
  token: string;
  logger: Logger;
  requestTimeoutMs?: number;
  /** A sample older than this when its turn comes is dropped (default 3 report intervals). */
  maxSampleAgeMs: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Jitter source in [0, 1). */
  random?: () => number;
  now?: () => number;
  /** Each push's end: how it went and, when accepted, the gateway's answer. */
  onOutcome?(outcome: PushOutcome, detail: { status?: number; body?: unknown; error?: string }): void;
}

/** Statuses worth retrying: the gateway is busy or timed out, not telling us the request is wrong. */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export class TelemetryPusher {
  private readonly url: string;
  private readonly requestTimeoutMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private pending: TelemetrySample | null = null;
  private inFlight: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;
  private abort: AbortController | null = null;

  constructor(private readonly options: TelemetryPusherOptions) {
    this.url = `${options.vcaUrl.replace(/\/+$/, '')}/v1/nodes/${encodeURIComponent(options.nodeId)}/telemetry`;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.retryBaseMs = options.retryBaseMs ?? 500;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
  }

  /** Offers the newest sample; it replaces any unsent older one and goes out as soon as allowed. */
  offer(sample: TelemetrySample): void {
    if (this.stopped) return;
    this.pending = sample;
    this.pump();
  }

  /** Stops retrying and aborts a request in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.abort?.abort();
    await this.inFlight?.catch(() => {});
  }

  private pump(): void {
    // One request at a time, and none while backing off: a newer sample waits its turn in `pending`.
    if (this.stopped || this.inFlight || this.retryTimer || !this.pending) return;
    const sample = this.pending;
    this.pending = null;
    const age = this.now() - sample.ts;
    if (age > this.options.maxSampleAgeMs) {
      this.options.logger.debug({ ageMs: age }, 'sample too old to push; dropped');
      this.options.onOutcome?.('dropped', {});
      return;
    }
    this.inFlight = this.send(sample).finally(() => {
      this.inFlight = null;
      this.pump();
    });
  }

  private async send(sample: TelemetrySample): Promise<void> {
    const { logger, onOutcome } = this.options;
    this.abort = new AbortController();
    const timeout = setTimeout(
      () => this.abort?.abort(new Error('request timed out')),
      this.requestTimeoutMs,
    );
    let status: number | undefined;
    let body: unknown;
    let error: string | undefined;
    try {
      const response = await fetch(this.url, {
        method: 'PUT',
        headers: { authorization: `Bearer ${this.options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(toTelemetryDocument(sample)),
        signal: this.abort.signal,
      });
      status = response.status;
      const text = await response.text();
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
    } catch (caught) {
      error =
        caught instanceof Error
          ? caught.cause instanceof Error
            ? caught.cause.message
            : caught.message
          : String(caught);
    } finally {
      clearTimeout(timeout);
      this.abort = null;
    }
    if (this.stopped) return;

    if (status !== undefined && status >= 200 && status < 300) {
      this.failures = 0;
      onOutcome?.('accepted', { status, body });
      return;
    }
    if (status !== undefined && !retryable(status)) {
      // The gateway says the request is wrong (bad token, unknown node, bad body): retrying the same
      // bytes cannot help. Log it and carry on with the next fresh sample at the normal pace.
      this.failures = 0;
      logger.error({ status, problem: body }, 'gateway rejected telemetry');
      onOutcome?.('rejected', { status, body });
      return;
    }
    const delayMs = this.backoffDelay();
    logger.warn({ status, error, delayMs }, 'telemetry push failed; retrying after backoff');
    onOutcome?.('failed', { ...(status !== undefined ? { status } : {}), ...(error ? { error } : {}) });
    // The failed sample is retried only if nothing newer arrives meanwhile.
    if (!this.pending) this.pending = sample;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, delayMs);
  }

  /** Exponential backoff with "equal jitter": half the step fixed, half random, so retries spread out. */
  private backoffDelay(): number {
    const step = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** this.failures);
    this.failures++;
    return Math.round(step / 2 + (step / 2) * this.random());
  }
}
