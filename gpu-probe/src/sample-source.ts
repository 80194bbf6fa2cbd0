/** What produces samples for the probe: the nvidia-smi sampler on a real node, the simulated GPU elsewhere. */
import type { TelemetrySample } from './telemetry-sample.js';

export interface SampleHandlers {
  /** A complete sample of every GPU. */
  sample(sample: TelemetrySample): void;
  /** The source cannot work on this machine (no nvidia-smi, no GPU, no driver) and has given up. */
  fatal?(error: Error): void;
  /** The sampling process died or went silent and will be started again after `delayMs`. */
  restart?(event: { delayMs: number; reason: string }): void;
  /** Whether a sampling process is running now. */
  up?(running: boolean): void;
}

export interface SampleSource {
  start(handlers: SampleHandlers): void;
  stop(): Promise<void>;
}
