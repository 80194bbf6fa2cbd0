import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { clockEventField, legacyClockEventField } from '../../gpu-probe/src/query-fields.js';
import { SmiSampler, type SmiSamplerOptions } from '../../gpu-probe/src/smi-sampler.js';
import type { TelemetrySample } from '../../gpu-probe/src/telemetry-sample.js';
import { readingsFromCsv } from '../../gpu-probe/src/telemetry-sample.js';
import {
  capture,
  type FakeSmi,
  type FakeSmiConfig,
  makeFakeSmi,
  runCli,
  waitFor,
} from './support/fake-smi.js';

const logger = pino({ level: 'silent' });
const l40sLoad = capture('nvidia-l40s.load');
const l40sIdle = capture('nvidia-l40s.idle');
const fixtureReading = (file: string) => readingsFromCsv(readFileSync(file, 'utf8'))[0]!;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function fake(config: Parameters<typeof makeFakeSmi>[0]): FakeSmi {
  const smi = makeFakeSmi(config);
  cleanups.push(() => smi.remove());
  return smi;
}

/** A sampler on `command`, collecting what it reports; stopped after the test. */
function sampler(command: string, options: Partial<SmiSamplerOptions> = {}) {
  const instance = new SmiSampler({ command, intervalMs: 40, logger, ...options });
  const samples: TelemetrySample[] = [];
  const restarts: Array<{ delayMs: number; reason: string }> = [];
  const fatal: Error[] = [];
  instance.start({
    sample: (sample) => samples.push(sample),
    restart: (event) => restarts.push(event),
    fatal: (error) => fatal.push(error),
  });
  cleanups.push(() => instance.stop());
  return { instance, samples, restarts, fatal };
}

const starts = (smi: FakeSmi) =>
  existsSync(smi.startsFile) ? readFileSync(smi.startsFile, 'utf8').trim().split('\n') : [];

describe('gpu-probe sampler: one long-lived nvidia-smi', () => {
  it('starts nvidia-smi once with -lms and turns every tick into a sample matching the capture', async () => {
    const smi = fake({ fixtures: [l40sLoad] });
    const { samples } = sampler(smi.command);
    await waitFor(() => samples.length >= 4, { what: '4 samples' });
    for (const sample of samples) expect(sample.gpus).toEqual([fixtureReading(l40sLoad)]);
    expect(samples[0]!.gpus[0]).toMatchObject({
      utilizationEncoder: 60,
      encoderSessions: 2,
      memoryUsed: 1235,
    });
    // Never an exec per sample: one process for all of them.
    expect(starts(smi)).toHaveLength(1);
    expect(starts(smi)[0]).toContain(`--query-gpu=index,uuid,name,`);
    expect(starts(smi)[0]).toContain(`${clockEventField} --format=csv,nounits -lms 40`);
  });

  it('groups the rows of one tick into one sample of every GPU', async () => {
    const smi = fake({ fixtures: [l40sIdle, l40sLoad], gpus: 3 });
    const { samples } = sampler(smi.command);
    await waitFor(() => samples.length >= 4, { what: '4 samples' });
    for (const sample of samples) expect(sample.gpus.map((gpu) => gpu.index)).toEqual([0, 1, 2]);
    // The fake alternates idle and load captures tick by tick.
    const encoder = samples.slice(0, 4).map((sample) => sample.gpus[0]!.utilizationEncoder);
    expect(encoder).toEqual([0, 60, 0, 60]);
  });

  it('restarts a crashing nvidia-smi with exponential backoff and keeps sampling', async () => {
    const smi = fake({ fixtures: [l40sLoad], exitAfterRows: 2 });
    const { instance, samples, restarts } = sampler(smi.command, { restartBaseMs: 30, restartMaxMs: 1000 });
    await waitFor(() => restarts.length >= 4, { what: '4 restarts' });
    expect(restarts.slice(0, 4).map((restart) => restart.delayMs)).toEqual([30, 60, 120, 240]);
    expect(restarts[0]!.reason).toMatch(/exited with code 3/);
    expect(instance.restarts).toBeGreaterThanOrEqual(4);
    await waitFor(() => starts(smi).length >= 5, { what: 'the fifth start' });
    expect(samples.length).toBeGreaterThanOrEqual(2 * 4);
    expect(samples.at(-1)!.gpus).toEqual([fixtureReading(l40sLoad)]);
  });

  it('kills and restarts an nvidia-smi that goes silent', async () => {
    const smi = fake({ fixtures: [l40sLoad], hangAfterRows: 1 });
    const { samples, restarts } = sampler(smi.command, { silenceTimeoutMs: 300, restartBaseMs: 20 });
    await waitFor(() => restarts.length >= 1, { what: 'a restart after silence' });
    expect(restarts[0]!.reason).toMatch(/SIGKILL/);
    await waitFor(() => starts(smi).length >= 2 && samples.length >= 2, {
      what: 'a sample from the new process',
    });
  });

  it('asks again with clocks_throttle_reasons.active when the driver rejects clocks_event_reasons.active', async () => {
    const smi = fake({ fixtures: [l40sLoad], reject: [clockEventField] });
    const { instance, samples, restarts } = sampler(smi.command);
    await waitFor(() => samples.length >= 2, { what: 'samples with the legacy field' });
    const [first, second] = starts(smi);
    expect(first).toContain(clockEventField);
    expect(second).toContain(legacyClockEventField);
    expect(second).not.toContain(clockEventField);
    expect(instance.fields.at(-1)).toBe(legacyClockEventField);
    expect(samples[0]!.gpus[0]!.throttleActive).toBe(false);
    expect(restarts).toEqual([]);
  });

  it('drops the clock-event field altogether (throttleActive unknown) when neither name is known', async () => {
    const smi = fake({ fixtures: [l40sLoad], reject: [clockEventField, legacyClockEventField] });
    const { samples } = sampler(smi.command);
    await waitFor(() => samples.length >= 1, { what: 'a sample without the field' });
    expect(starts(smi)).toHaveLength(3);
    expect(samples[0]!.gpus[0]).toMatchObject({ utilizationEncoder: 60, throttleActive: null });
  });

  it('gives up (fatal) when nvidia-smi does not exist, and when it finds no GPU', async () => {
    const missing = sampler('/nonexistent/nvidia-smi');
    await waitFor(() => missing.fatal.length === 1, { what: 'fatal' });
    expect(missing.fatal[0]!.message).toMatch(/cannot run nvidia-smi.*ENOENT/);

    const dir = mkdtempSync(path.join(tmpdir(), 'no-gpu-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const noDevices = path.join(dir, 'nvidia-smi');
    writeFileSync(noDevices, '#!/bin/sh\necho "No devices were found"\nexit 6\n');
    chmodSync(noDevices, 0o755);
    const none = sampler(noDevices);
    await waitFor(() => none.fatal.length === 1, { what: 'fatal' });
    expect(none.fatal[0]!.message).toMatch(/no NVIDIA GPU.*No devices were found/);
    expect(none.restarts).toEqual([]);
  });
});

describe('gpu-probe CLI: --once', () => {
  const fakeFor = (config: FakeSmiConfig, onTestFinished: (cleanup: () => void) => void) => {
    const smi = makeFakeSmi(config);
    onTestFinished(() => smi.remove());
    return smi;
  };

  const withPath = (dir: string) => ({ ...process.env, PATH: `${dir}${path.delimiter}${process.env.PATH}` });

  it('prints exactly one telemetry document from the nvidia-smi first on PATH, and exits 0', async ({
    expect,
    onTestFinished,
  }) => {
    const smi = fakeFor({ fixtures: [l40sLoad], gpus: 2 }, onTestFinished);
    const run = await runCli(['--once'], withPath(smi.dir));
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const document = JSON.parse(lines[0]!);
    expect(Object.keys(document).sort()).toEqual(['gpus', 'ts']);
    expect(document.gpus).toEqual([
      { ...fixtureReading(l40sLoad), index: 0 },
      { ...fixtureReading(l40sLoad), index: 1 },
    ]);
    expect(Math.abs(document.ts - Date.now())).toBeLessThan(15_000);
    expect(starts(smi)).toHaveLength(1);
  });

  it('uses --nvidia-smi PATH when given', async ({ expect, onTestFinished }) => {
    const smi = fakeFor({ fixtures: [capture('nvidia-geforce-rtx-4080-super.load')] }, onTestFinished);
    const run = await runCli(['--once', '--nvidia-smi', smi.command]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).gpus[0]).toMatchObject({
      name: 'NVIDIA GeForce RTX 4080 SUPER',
      utilizationEncoder: 72,
      encoderSessions: 2,
      encoderAvgFps: 184,
    });
  });

  it('exits 1 with a clear message when there is no nvidia-smi on PATH', async ({
    expect,
    onTestFinished,
  }) => {
    const empty = mkdtempSync(path.join(tmpdir(), 'empty-path-'));
    onTestFinished(() => rmSync(empty, { recursive: true, force: true }));
    const run = await runCli(['--once'], { ...process.env, PATH: empty });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/nvidia-smi not found on PATH.*--simulate MODEL/);
  });

  it('exits 2 on bad arguments, naming the problem', async ({ expect }) => {
    const [unknown, missing, model] = await Promise.all([
      runCli(['--once', '--frobnicate']),
      runCli([], { ...process.env, VCA_URL: '', VCA_NODE_ID: '', VCA_NODE_TOKEN: '' }),
      runCli(['--once', '--simulate', 'Voodoo 2']),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--frobnicate'/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing --vca \(or VCA_URL\), --node-id \(or VCA_NODE_ID\), --token/);
    expect(model.code).toBe(2);
    expect(model.stderr).toMatch(/unknown GPU model "Voodoo 2"; known: .*L4/);
  });

  it('prints a simulated idle GPU with --simulate', async ({ expect }) => {
    const run = await runCli(['--once', '--simulate', 'RTX 4080 SUPER', '--gpus', '2']);
    expect(run.code).toBe(0);
    const document = JSON.parse(run.stdout);
    expect(document.gpus).toHaveLength(2);
    expect(document.gpus[1]).toMatchObject({
      index: 1,
      name: 'NVIDIA GeForce RTX 4080 SUPER',
      utilizationGpu: 0,
      utilizationEncoder: 0,
      memoryTotal: 16376,
      encoderSessions: 0,
      throttleActive: false,
    });
  });
});
