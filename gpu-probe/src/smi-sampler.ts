/**
 * Continuous samples from ONE long-lived `nvidia-smi --query-gpu=... -lms N` child process (never an
 * exec per sample). Rows are grouped into per-tick samples; a child that dies or goes silent is restarted
 * with exponential backoff, and a driver that rejects the clock-event field name is asked again with
 * the older name.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { SmiCsvParser } from './csv-parser.js';
import { type GpuReading, toGpuReading } from './gpu-reading.js';
import { queryFieldVariants, samplingArguments } from './query-fields.js';
import type { SampleHandlers, SampleSource } from './sample-source.js';
import { byIndex } from './telemetry-sample.js';

export interface SmiSamplerOptions {
  /** The nvidia-smi executable (a path, or a name looked up on PATH). */
  command: string;
  intervalMs: number;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** First restart delay; doubles per consecutive failed run up to `restartMaxMs`. */
  restartBaseMs?: number;
  restartMaxMs?: number;
  /** No output for this long means nvidia-smi hangs (a wedged driver): kill it and start again. */
  silenceTimeoutMs?: number;
  /** A run that lasted this long was healthy: the next failure starts the backoff from the beginning. */
  healthyRunMs?: number;
  /** Defaults to Date.now; sample timestamps and run durations use it. */
  now?: () => number;
}

/** Output that means "this machine has no usable NVIDIA GPU": giving up beats restarting forever. */
const noGpuMessage =
  /no devices were found|couldn't communicate with the nvidia driver|nvidia-smi has failed|no nvidia gpu/i;
/** Output of a driver that does not know one of the requested fields. */
const unknownFieldMessage = /not a valid field|invalid field|unknown field|is not supported as a query/i;

interface Run {
  child: ChildProcess;
  parser: SmiCsvParser;
  startedAt: number;
  /** Data records seen in this run (header excluded). */
  records: number;
  /** Tail of stderr, and stdout until a header shows up: where nvidia-smi's complaints are. */
  output: string;
  spawnError: NodeJS.ErrnoException | null;
  ended: boolean;
}

export class SmiSampler implements SampleSource {
  private readonly intervalMs: number;
  private readonly restartBaseMs: number;
  private readonly restartMaxMs: number;
  private readonly silenceTimeoutMs: number;
  private readonly healthyRunMs: number;
  private readonly quietMs: number;
  private readonly now: () => number;
  private handlers: SampleHandlers | null = null;
  private run: Run | null = null;
  private variant = 0;
  private consecutiveFailures = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private silenceTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private batch: GpuReading[] = [];
  private batchStartedAt = 0;
  /** GPU count of the last complete sample: a batch that reaches it is complete without waiting. */
  private gpuCount = 0;
  private stopping = false;
  /** Restarts after a crash or a hang (not the one-off retry with the older field name). */
  restarts = 0;
  lastSampleAt: number | null = null;

  constructor(private readonly options: SmiSamplerOptions) {
    this.intervalMs = options.intervalMs;
    this.restartBaseMs = options.restartBaseMs ?? 1000;
    this.restartMaxMs = options.restartMaxMs ?? 60_000;
    this.silenceTimeoutMs = options.silenceTimeoutMs ?? Math.max(5 * options.intervalMs, 5000);
    this.healthyRunMs = options.healthyRunMs ?? Math.max(30_000, 10 * options.intervalMs);
    // nvidia-smi prints one row per GPU back to back each tick; a pause this long ends the tick.
    this.quietMs = Math.min(250, Math.max(20, Math.floor(options.intervalMs / 4)));
    this.now = options.now ?? Date.now;
  }

  /** The field list in use (changes when the driver rejects the clock-event field name). */
  get fields(): readonly string[] {
    return queryFieldVariants[this.variant]!;
  }

  start(handlers: SampleHandlers): void {
    this.handlers = handlers;
    this.stopping = false;
    this.spawnRun();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of [this.restartTimer, this.silenceTimer, this.flushTimer])
      if (timer) clearTimeout(timer);
    this.restartTimer = this.silenceTimer = this.flushTimer = null;
    const run = this.run;
    if (!run || run.ended) return;
    await new Promise<void>((resolve) => {
      const killTimer = setTimeout(() => run.child.kill('SIGKILL'), 1000);
      run.child.once('close', () => {
        clearTimeout(killTimer);
        resolve();
      });
      run.child.kill('SIGTERM');
    });
  }

  private spawnRun(): void {
    const { command, logger } = this.options;
    const args = samplingArguments(this.fields, this.intervalMs);
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: this.options.env ?? process.env,
    });
    const run: Run = {
      child,
      parser: new SmiCsvParser({ expectedFields: this.fields }),
      startedAt: this.now(),
      records: 0,
      output: '',
      spawnError: null,
      ended: false,
    };
    this.run = run;
    logger.debug({ command, args, pid: child.pid }, 'nvidia-smi started');
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onStdout(run, chunk));
    child.stderr!.on('data', (chunk: string) => {
      run.output = (run.output + chunk).slice(-4096);
    });
    child.once('spawn', () => this.handlers?.up?.(true));
    child.once('error', (error: NodeJS.ErrnoException) => {
      run.spawnError = error;
      // A child that never spawned emits no 'close' on every Node version: end the run here too.
      if (child.pid === undefined) this.onEnd(run, null, null);
    });
    child.once('close', (code, signal) => this.onEnd(run, code, signal));
    this.armSilenceTimer(run);
  }

  private onStdout(run: Run, chunk: string): void {
    if (run !== this.run || run.ended) return;
    this.armSilenceTimer(run);
    const records = run.parser.push(chunk);
    // Before a header, stdout is a message (an unknown field, no devices); after it, only data.
    if (!run.parser.sawHeader) run.output = (run.output + chunk).slice(-4096);
    for (const record of records) {
      run.records++;
      const reading = toGpuReading(record);
      if (reading) this.addToBatch(reading);
    }
  }

  private addToBatch(reading: GpuReading): void {
    // The same index again means a new tick began: the previous one is complete.
    if (this.batch.some((earlier) => earlier.index === reading.index)) this.flushBatch();
    if (this.batch.length === 0) this.batchStartedAt = this.now();
    this.batch.push(reading);
    if (this.gpuCount > 0 && this.batch.length >= this.gpuCount) {
      this.flushBatch();
      return;
    }
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => this.flushBatch(), this.quietMs);
  }

  private flushBatch(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.batch.length === 0) return;
    const gpus = byIndex(this.batch);
    this.batch = [];
    this.gpuCount = gpus.length;
    this.lastSampleAt = this.batchStartedAt;
    this.handlers?.sample({ ts: this.batchStartedAt, gpus });
  }

  private armSilenceTimer(run: Run): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      if (run !== this.run || run.ended || this.stopping) return;
      this.options.logger.warn(
        { pid: run.child.pid, silentMs: this.silenceTimeoutMs },
        'nvidia-smi went silent; killing it',
      );
      run.output += '\n(silent: killed by the probe)';
      run.child.kill('SIGKILL');
    }, this.silenceTimeoutMs);
  }

  private onEnd(run: Run, code: number | null, signal: NodeJS.Signals | null): void {
    if (run.ended) return;
    run.ended = true;
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = null;
    for (const record of run.parser.end()) {
      run.records++;
      const reading = toGpuReading(record);
      if (reading) this.addToBatch(reading);
    }
    this.flushBatch();
    this.handlers?.up?.(false);
    if (this.stopping || run !== this.run) return;
    const { logger } = this.options;
    const output = run.output.trim();
    const everSampled = this.lastSampleAt !== null;

    if (run.spawnError && !everSampled) {
      const missing = run.spawnError.code === 'ENOENT' || run.spawnError.code === 'EACCES';
      if (missing) {
        this.fail(
          new Error(
            `cannot run nvidia-smi ("${this.options.command}": ${run.spawnError.code}); install the NVIDIA driver, pass --nvidia-smi PATH, or use --simulate MODEL`,
          ),
        );
        return;
      }
    }
    if (run.records === 0 && !everSampled && noGpuMessage.test(output)) {
      this.fail(new Error(`no NVIDIA GPU is usable on this machine: nvidia-smi said "${firstLine(output)}"`));
      return;
    }
    if (
      run.records === 0 &&
      unknownFieldMessage.test(output) &&
      this.variant < queryFieldVariants.length - 1
    ) {
      const rejected = this.fields[this.fields.length - 1];
      this.variant++;
      logger.warn(
        { rejected, next: this.fields[this.fields.length - 1], said: firstLine(output) },
        'nvidia-smi rejected a field; asking again with the older field list',
      );
      this.spawnRun();
      return;
    }

    const ranFor = this.now() - run.startedAt;
    if (ranFor >= this.healthyRunMs) this.consecutiveFailures = 0;
    const delayMs = Math.min(this.restartMaxMs, this.restartBaseMs * 2 ** this.consecutiveFailures);
    this.consecutiveFailures++;
    this.restarts++;
    const reason = run.spawnError
      ? `spawn failed: ${run.spawnError.code ?? run.spawnError.message}`
      : `exited with ${signal ?? `code ${code}`}${output ? `: ${firstLine(output)}` : ''}`;
    logger.warn({ delayMs, reason, restarts: this.restarts }, 'nvidia-smi stopped; restarting after backoff');
    this.handlers?.restart?.({ delayMs, reason });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.stopping) this.spawnRun();
    }, delayMs);
  }

  private fail(error: Error): void {
    this.options.logger.error({ err: error }, 'nvidia-smi cannot sample this machine');
    this.handlers?.fatal?.(error);
  }
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '') ?? '';
}
