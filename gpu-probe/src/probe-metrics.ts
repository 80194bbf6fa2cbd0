/**
 * The probe's own Prometheus metrics, in their own Registry: per-GPU readings (an unknown reading
 * removes its series instead of exporting 0), push outcomes, nvidia-smi restarts and sample age.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { GpuInventoryEntry } from './inventory.js';
import type { PushOutcome } from './telemetry-pusher.js';
import type { TelemetrySample } from './telemetry-sample.js';

const mebibyte = 1024 * 1024;

export class ProbeMetrics {
  readonly registry = new Registry();
  private readonly utilization: Gauge<'gpu' | 'kind'>;
  private readonly temperature: Gauge<'gpu'>;
  private readonly memoryUsed: Gauge<'gpu'>;
  private readonly memoryTotal: Gauge<'gpu'>;
  private readonly powerDraw: Gauge<'gpu'>;
  private readonly encoderSessions: Gauge<'gpu'>;
  private readonly throttle: Gauge<'gpu'>;
  private readonly info: Gauge<'gpu' | 'model' | 'bus_id' | 'driver'>;
  private readonly pushes: Counter<'outcome'>;
  private readonly restarts: Counter;
  private readonly samplerUp: Gauge;
  private lastSampleAt: number | null = null;

  constructor(now: () => number = Date.now, staleAfterMs = Number.POSITIVE_INFINITY) {
    const registers = [this.registry];
    const startedAt = now();
    this.utilization = new Gauge({
      name: 'gpu_probe_utilization_ratio',
      help: 'GPU utilization as nvidia-smi reports it, 0..1, by engine (gpu, memory, encoder, decoder)',
      labelNames: ['gpu', 'kind'],
      registers,
    });
    this.temperature = new Gauge({
      name: 'gpu_probe_temperature_celsius',
      help: 'GPU core temperature',
      labelNames: ['gpu'],
      registers,
    });
    this.memoryUsed = new Gauge({
      name: 'gpu_probe_memory_used_bytes',
      help: 'GPU memory in use',
      labelNames: ['gpu'],
      registers,
    });
    this.memoryTotal = new Gauge({
      name: 'gpu_probe_memory_total_bytes',
      help: 'GPU memory visible to applications',
      labelNames: ['gpu'],
      registers,
    });
    this.powerDraw = new Gauge({
      name: 'gpu_probe_power_draw_watts',
      help: 'Board power draw',
      labelNames: ['gpu'],
      registers,
    });
    this.encoderSessions = new Gauge({
      name: 'gpu_probe_encoder_sessions',
      help: 'Active NVENC sessions',
      labelNames: ['gpu'],
      registers,
    });
    this.throttle = new Gauge({
      name: 'gpu_probe_throttle_active',
      help: '1 while a power or thermal clock-event reason slows the GPU',
      labelNames: ['gpu'],
      registers,
    });
    this.info = new Gauge({
      name: 'gpu_probe_gpu_info',
      help: 'Inventory taken at start (systeminformation): always 1, facts in labels',
      labelNames: ['gpu', 'model', 'bus_id', 'driver'],
      registers,
    });
    this.pushes = new Counter({
      name: 'gpu_probe_push_total',
      help: 'Telemetry pushes by outcome: accepted, rejected (4xx, not retried), failed (retried), dropped (too old)',
      labelNames: ['outcome'],
      registers,
    });
    this.restarts = new Counter({
      name: 'gpu_probe_smi_restarts_total',
      help: 'Times the nvidia-smi sampling process died or went silent and was restarted',
      registers,
    });
    this.samplerUp = new Gauge({
      name: 'gpu_probe_sampler_up',
      help: '1 while the sampling process (nvidia-smi or the simulation) runs',
      registers,
    });
    const metrics = this;
    new Gauge({
      name: 'gpu_probe_sample_age_seconds',
      help: 'Age of the newest sample (time since start while there is none)',
      registers,
      collect() {
        this.set((now() - (metrics.lastSampleAt ?? startedAt)) / 1000);
      },
    });
    new Gauge({
      name: 'gpu_probe_stale',
      help: '1 while the newest sample is too old to push: the gateway will mark this node stale',
      registers,
      collect() {
        this.set(now() - (metrics.lastSampleAt ?? startedAt) > staleAfterMs ? 1 : 0);
      },
    });
    for (const outcome of ['accepted', 'rejected', 'failed', 'dropped'] as const)
      this.pushes.inc({ outcome }, 0);
  }

  recordSample(sample: TelemetrySample): void {
    this.lastSampleAt = sample.ts;
    for (const reading of sample.gpus) {
      const gpu = String(reading.index);
      const set = (gauge: Gauge<'gpu'>, value: number | null, scale = 1) => {
        if (value === null) gauge.remove({ gpu });
        else gauge.set({ gpu }, value * scale);
      };
      const kinds = [
        ['gpu', reading.utilizationGpu],
        ['memory', reading.utilizationMemory],
        ['encoder', reading.utilizationEncoder],
        ['decoder', reading.utilizationDecoder],
      ] as const;
      for (const [kind, percent] of kinds) {
        if (percent === null) this.utilization.remove({ gpu, kind });
        else this.utilization.set({ gpu, kind }, percent / 100);
      }
      set(this.temperature, reading.temperatureGpu);
      set(this.memoryUsed, reading.memoryUsed, mebibyte);
      set(this.memoryTotal, reading.memoryTotal, mebibyte);
      set(this.powerDraw, reading.powerDraw);
      set(this.encoderSessions, reading.encoderSessions);
      set(this.throttle, reading.throttleActive === null ? null : reading.throttleActive ? 1 : 0);
    }
  }

  recordPush(outcome: PushOutcome): void {
    this.pushes.inc({ outcome });
  }

  recordRestart(): void {
    this.restarts.inc();
  }

  recordSamplerUp(running: boolean): void {
    this.samplerUp.set(running ? 1 : 0);
  }

  recordInventory(entries: readonly GpuInventoryEntry[]): void {
    for (const entry of entries) {
      this.info.set(
        {
          gpu: String(entry.index),
          model: entry.model ?? '',
          bus_id: entry.busId ?? '',
          driver: entry.driverVersion ?? '',
        },
        1,
      );
    }
  }
}
