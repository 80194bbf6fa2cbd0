/**
 * Samples from a DCGM exporter: `GET <url>` (its `/metrics` page) once per interval, each request with
 * a timeout, never two at once. A scrape that fails (HTTP error, timeout, connection refused, a page
 * that does not parse or lists no GPU) gives no sample: the probe's staleness watch then marks the GPUs
 * stale and nothing is pushed, exactly as when nvidia-smi goes silent. The next good scrape is fresh.
 */
import type { Logger } from 'pino';
import { readDcgmPage } from './dcgm-page.js';
import type { SampleHandlers, SampleSource } from './sample-source.js';
import type { TelemetrySample } from './telemetry-sample.js';

export interface DcgmSourceOptions {
  /** The exporter's metrics page, e.g. `http://127.0.0.1:9400/metrics`. */
  url: string;
  intervalMs: number;
  logger: Logger;
  /** Per-request limit; defaults to the interval, within 1..10 s. */
  requestTimeoutMs?: number;
  /** Defaults to Date.now; sample timestamps use it. */
  now?: () => number;
}

export class DcgmScrapeError extends Error {
  readonly code = 'GPU_PROBE_ERR_DCGM_SCRAPE';
}

/** Exporter pages are tens of KiB per GPU; a body past this is not an exporter page. */
const maxPageBytes = 16 * 1024 * 1024;

/** The body as text, or a `DcgmScrapeError` once it passes `maxPageBytes` (chunked bodies included). */
async function readBounded(response: Response): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for await (const chunk of response.body ?? []) {
    bytes += chunk.byteLength;
    // Leaving the loop by a throw cancels the stream (the iterator's return()).
    if (bytes > maxPageBytes)
      throw new DcgmScrapeError(`DCGM exporter page larger than ${maxPageBytes} bytes`);
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

export class DcgmSource implements SampleSource {
  private readonly requestTimeoutMs: number;
  private readonly now: () => number;
  private handlers: SampleHandlers | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private abort: AbortController | null = null;
  private stopping = false;
  /** null before the first scrape; then whether the last one worked (logs only the transitions). */
  private up: boolean | null = null;
  lastSampleAt: number | null = null;

  constructor(private readonly options: DcgmSourceOptions) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? Math.min(10_000, Math.max(1000, options.intervalMs));
    this.now = options.now ?? Date.now;
  }

  start(handlers: SampleHandlers): void {
    this.handlers = handlers;
    this.stopping = false;
    this.poll();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
    await this.inFlight;
  }

  /** One scrape: the sample, or a `DcgmScrapeError` saying why there is none (`--once` uses it). */
  async scrape(): Promise<TelemetrySample> {
    const ts = this.now();
    const abort = new AbortController();
    this.abort = abort;
    const timeout = setTimeout(() => abort.abort(), this.requestTimeoutMs);
    let text: string;
    try {
      const response = await fetch(this.options.url, {
        signal: abort.signal,
        headers: { accept: 'text/plain;version=0.0.4' },
      });
      if (!response.ok) {
        await response.body?.cancel();
        throw new DcgmScrapeError(`DCGM exporter answered HTTP ${response.status}`);
      }
      text = await readBounded(response);
    } catch (error) {
      if (error instanceof DcgmScrapeError) throw error;
      const cause = (error as Error & { cause?: { code?: string } }).cause;
      throw new DcgmScrapeError(
        abort.signal.aborted && !this.stopping
          ? `DCGM exporter did not answer within ${this.requestTimeoutMs} ms`
          : `DCGM exporter unreachable: ${cause?.code ?? (error as Error).message}`,
      );
    } finally {
      clearTimeout(timeout);
    }
    let page: ReturnType<typeof readDcgmPage>;
    try {
      page = readDcgmPage(text);
    } catch (error) {
      throw new DcgmScrapeError(`DCGM exporter page is not Prometheus text: ${(error as Error).message}`);
    }
    if (page.gpus.length === 0)
      throw new DcgmScrapeError(
        'DCGM exporter page lists no whole GPU (no DCGM_FI_DEV_* series with a gpu label)',
      );
    if (this.up === null)
      this.options.logger.info(
        { url: this.options.url, gpus: page.gpus.length, migSeries: page.migSeries, hostname: page.hostname },
        'reading the DCGM exporter',
      );
    return { ts, gpus: page.gpus };
  }

  private poll(): void {
    if (this.stopping) return;
    const startedAt = this.now();
    this.inFlight = this.scrape().then(
      (sample) => {
        if (this.stopping) return;
        if (this.up === false)
          this.options.logger.info({ url: this.options.url }, 'DCGM exporter answers again');
        this.setUp(true);
        this.lastSampleAt = sample.ts;
        this.handlers?.sample(sample);
      },
      (error: Error) => {
        if (this.stopping) return;
        if (this.up !== false)
          this.options.logger.warn(
            { url: this.options.url, reason: error.message },
            'DCGM exporter scrape failed; no sample until it answers again',
          );
        this.setUp(false);
      },
    );
    void this.inFlight.then(() => {
      this.inFlight = null;
      if (this.stopping) return;
      // On the interval from the start of this scrape; a slow one is followed at once, never overlapped.
      const delay = Math.max(0, this.options.intervalMs - (this.now() - startedAt));
      this.timer = setTimeout(() => {
        this.timer = null;
        this.poll();
      }, delay);
    });
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    this.handlers?.up?.(up);
  }
}
