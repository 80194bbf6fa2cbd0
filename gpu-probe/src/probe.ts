/**
 * The running agent: wires a sample source (nvidia-smi or the simulation) to the pusher and the
 * metrics, takes the inventory once in the background, watches for staleness, and shuts down cleanly.
 */
import type { Logger } from 'pino';
import { takeInventory } from './inventory.js';
import { type MetricsServer, startMetricsServer } from './metrics-server.js';
import { type PingServer, startPingServer } from './ping-server.js';
import type { ProbeMetrics } from './probe-metrics.js';
import type { SampleSource } from './sample-source.js';
import type { TelemetryPusher } from './telemetry-pusher.js';

export interface ProbeOptions {
  source: SampleSource;
  pusher: TelemetryPusher;
  metrics: ProbeMetrics;
  logger: Logger;
  intervalMs: number;
  /** Newest sample older than this: the GPU is reported stale (nothing fresh is pushed). */
  staleAfterMs: number;
  /** null: no metrics server. 0: any free port. */
  metricsPort: number | null;
  metricsHost?: string;
  /** Port of the gamers' ping target (`GET /ping`); null: none. 0: any free port. */
  pingPort?: number | null;
  pingHost?: string;
  /** Take the systeminformation inventory at start (off in simulation: there is no GPU to list). */
  inventory: boolean;
  inventoryTimeoutMs?: number;
  now?: () => number;
}

export class Probe {
  private metricsServer: MetricsServer | null = null;
  private pingServer: PingServer | null = null;
  private staleTimer: NodeJS.Timeout | null = null;
  private lastSampleAt: number | null = null;
  private stale = false;
  private readonly startedAt: number;
  private readonly now: () => number;
  private readonly inventoryAbort = new AbortController();
  private rejectFailure: ((error: Error) => void) | null = null;
  /** Settles (rejects) only if the source gives up: no nvidia-smi, no GPU. */
  readonly failure: Promise<never>;

  constructor(private readonly options: ProbeOptions) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.failure = new Promise<never>((_, reject) => {
      this.rejectFailure = reject;
    });
    // Callers may never await `failure`; an unobserved rejection must not crash the process.
    this.failure.catch(() => {});
  }

  /** Starts sampling, pushing and serving metrics; resolves with the metrics port once it listens. */
  async start(): Promise<{ metricsPort: number | null; pingPort: number | null }> {
    const { source, pusher, metrics, logger, metricsPort, metricsHost, pingPort, pingHost } = this.options;
    if (metricsPort !== null) {
      this.metricsServer = await startMetricsServer(metrics.registry, metricsPort, metricsHost);
      logger.info({ port: this.metricsServer.port }, 'metrics server listening');
    }
    if (pingPort !== undefined && pingPort !== null) {
      this.pingServer = await startPingServer(pingPort, pingHost);
      logger.info({ port: this.pingServer.port }, 'ping server listening');
    }
    source.start({
      sample: (sample) => {
        this.lastSampleAt = sample.ts;
        metrics.recordSample(sample);
        if (this.stale) {
          this.stale = false;
          logger.info({ gpus: sample.gpus.length }, 'GPU telemetry fresh again');
        }
        pusher.offer(sample);
      },
      fatal: (error) => this.rejectFailure?.(error),
      restart: () => metrics.recordRestart(),
      up: (running) => metrics.recordSamplerUp(running),
    });
    this.staleTimer = setInterval(() => this.checkStale(), this.options.intervalMs);
    this.staleTimer.unref();
    if (this.options.inventory) void this.inventory();
    return { metricsPort: this.metricsServer?.port ?? null, pingPort: this.pingServer?.port ?? null };
  }

  async stop(): Promise<void> {
    if (this.staleTimer) clearInterval(this.staleTimer);
    this.staleTimer = null;
    this.inventoryAbort.abort();
    await Promise.all([
      this.options.source.stop(),
      this.options.pusher.stop(),
      this.metricsServer?.close(),
      this.pingServer?.close(),
    ]);
    this.metricsServer = null;
    this.pingServer = null;
  }

  private checkStale(): void {
    const age = this.now() - (this.lastSampleAt ?? this.startedAt);
    if (!this.stale && age > this.options.staleAfterMs) {
      this.stale = true;
      this.options.logger.warn(
        { ageMs: age },
        'GPU telemetry stale: no fresh sample, so none is pushed; the gateway will stop placing here',
      );
    }
  }

  private async inventory(): Promise<void> {
    const { logger, metrics } = this.options;
    const result = await takeInventory(this.options.inventoryTimeoutMs, this.inventoryAbort.signal);
    if (result.ok && result.gpus.length > 0) {
      metrics.recordInventory(result.gpus);
      logger.info({ gpus: result.gpus, durationMs: result.durationMs }, 'GPU inventory');
    } else if (result.ok) {
      logger.warn({ durationMs: result.durationMs }, 'GPU inventory lists no NVIDIA GPU; sampling goes on');
    } else {
      logger.warn(
        { error: result.error, durationMs: result.durationMs },
        'GPU inventory failed; sampling goes on',
      );
    }
  }
}
