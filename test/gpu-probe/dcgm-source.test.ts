import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { readDcgmPage } from '../../gpu-probe/src/dcgm-page.js';
import { DcgmSource } from '../../gpu-probe/src/dcgm-source.js';
import type { GpuReading } from '../../gpu-probe/src/gpu-reading.js';
import { Probe } from '../../gpu-probe/src/probe.js';
import { ProbeMetrics } from '../../gpu-probe/src/probe-metrics.js';
import { TelemetryPusher } from '../../gpu-probe/src/telemetry-pusher.js';
import type { TelemetrySample } from '../../gpu-probe/src/telemetry-sample.js';
import { runCli, waitFor } from './support/fake-smi.js';

const logger = pino({ level: 'silent' });
const fixtureDir = path.resolve(import.meta.dirname, '../fixtures/dcgm');
const fixture = (name: string) => readFileSync(path.join(fixtureDir, name), 'utf8');

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Not in DCGM's default counters: unknown (key order as in every GpuReading, for the exact JSON). */
const unpublished = { powerLimit: null, encoderSessions: null, encoderAvgFps: null };

/** Every value the telemetry document will carry, per fixture, written out by hand. */
const expected: Record<string, { hostname: string; migSeries: number; gpus: GpuReading[] }> = {
  'nvidia-l4.single.metrics': {
    hostname: 'render-l4-01',
    migSeries: 0,
    gpus: [
      {
        index: 0,
        uuid: 'GPU-9b3f1c2e-47a8-5d06-b1e4-7c2d9a0f3e51',
        name: 'NVIDIA L4',
        utilizationGpu: 43,
        utilizationMemory: 21,
        utilizationEncoder: 58,
        utilizationDecoder: 0,
        temperatureGpu: 67,
        memoryUsed: 5621,
        memoryTotal: 5621 + 16837,
        powerDraw: 71.874,
        ...unpublished,
        // DCGM_FI_DEV_CLOCKS_EVENT_REASONS 4: SW power cap, a 72 W board at its limit.
        throttleActive: true,
      },
    ],
  },
  'nvidia-l40s.x2.metrics': {
    hostname: 'render-l40s-07',
    migSeries: 0,
    gpus: [
      {
        index: 0,
        uuid: 'GPU-2f6a0d41-8c3e-b7a9-55d2-e01c4b7f9a36',
        name: 'NVIDIA L40S',
        utilizationGpu: 77,
        utilizationMemory: 35,
        utilizationEncoder: 64,
        utilizationDecoder: 3,
        temperatureGpu: 58,
        memoryUsed: 14058,
        memoryTotal: 14058 + 31420,
        powerDraw: 243.517,
        ...unpublished,
        // The shipped default CSV has no clock-event mask: unknown, not "not throttled".
        throttleActive: null,
      },
      {
        index: 1,
        uuid: 'GPU-c81e77b0-1d94-4a2f-9e63-5b0a2d8c4f17',
        name: 'NVIDIA L40S',
        utilizationGpu: 0,
        utilizationMemory: 0,
        utilizationEncoder: 0,
        utilizationDecoder: 0,
        temperatureGpu: 31,
        memoryUsed: 0,
        memoryTotal: 45478,
        powerDraw: 34.062,
        ...unpublished,
        throttleActive: null,
      },
    ],
  },
  'nvidia-h100-80gb-hbm3.mig.metrics': {
    hostname: 'render-h100-02',
    migSeries: 10,
    gpus: [
      {
        index: 0,
        uuid: 'GPU-5e0b9d37-a1f4-2c86-7d3b-94e2c0f1a8d5',
        name: 'NVIDIA H100 80GB HBM3',
        // In MIG mode the whole GPU has no utilization series: unknown, never 0.
        utilizationGpu: null,
        utilizationMemory: null,
        utilizationEncoder: null,
        utilizationDecoder: null,
        temperatureGpu: 39,
        // The whole GPU's framebuffer, not an instance's (11212 / 584 used, listed before it).
        memoryUsed: 12146,
        memoryTotal: 12146 + 68652,
        powerDraw: 187.301,
        ...unpublished,
        // DCGM_FI_DEV_CLOCK_THROTTLE_REASONS 1: idle only.
        throttleActive: false,
      },
      {
        index: 1,
        uuid: 'GPU-a73c2e18-6b05-f9d1-3e47-08c5d2b9e6f0',
        name: 'NVIDIA H100 80GB HBM3',
        utilizationGpu: 92,
        utilizationMemory: 47,
        utilizationEncoder: 0,
        utilizationDecoder: 0,
        temperatureGpu: 52,
        memoryUsed: 62792,
        memoryTotal: 62792 + 18321,
        powerDraw: 412.958,
        ...unpublished,
        // 32 = 0x20 SW thermal slowdown.
        throttleActive: true,
      },
    ],
  },
};

/** A DCGM exporter stand-in on port 0 that can fail, hang, go away and come back on the same port. */
async function fakeExporter(initialPage: string) {
  const state = { page: initialPage, status: 200, hang: false, scrapes: 0 };
  const server: Server = createServer((request, response) => {
    state.scrapes++;
    if (state.hang) return; // never answers
    if (request.url !== '/metrics') return void response.writeHead(404).end();
    response.writeHead(state.status, { 'content-type': 'text/plain; version=0.0.4' }).end(state.page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let listening = true;
  const goAway = () =>
    new Promise<void>((resolve) => {
      listening = false;
      server.close(() => resolve());
      server.closeAllConnections();
    });
  const comeBack = () =>
    new Promise<void>((resolve) => {
      listening = true;
      server.listen(port, '127.0.0.1', resolve);
    });
  cleanups.push(async () => {
    state.hang = false;
    if (listening) await goAway();
  });
  return { url: `http://127.0.0.1:${port}/metrics`, state, goAway, comeBack };
}

function source(url: string, intervalMs = 100, requestTimeoutMs?: number) {
  const dcgm = new DcgmSource({
    url,
    intervalMs,
    logger,
    ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
  });
  const samples: TelemetrySample[] = [];
  const up: boolean[] = [];
  dcgm.start({ sample: (sample) => samples.push(sample), up: (running) => up.push(running) });
  cleanups.push(() => dcgm.stop());
  return { dcgm, samples, up };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('dcgm page: exporter text -> whole-GPU readings', () => {
  it('has expectations for every fixture in test/fixtures/dcgm', () => {
    const files = readdirSync(fixtureDir).filter((file) => file.endsWith('.metrics'));
    expect(files.sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(Object.keys(expected))('%s: every field, MIG instances left out', (file) => {
    const page = readDcgmPage(fixture(file));
    expect(page).toEqual(expected[file]);
  });

  it('reads blank sentinels, NaN, negatives and impossible temperatures as unknown, and clamps percentages', () => {
    const series = (name: string, value: string, gpu = '0') =>
      `${name}{gpu="${gpu}",UUID="GPU-x",modelName="NVIDIA L4"} ${value}`;
    const page = readDcgmPage(
      [
        series('DCGM_FI_DEV_GPU_UTIL', '2147483632'), // DCGM int32 blank
        series('DCGM_FI_DEV_ENC_UTIL', '140'),
        series('DCGM_FI_DEV_DEC_UTIL', 'NaN'),
        series('DCGM_FI_DEV_MEM_COPY_UTIL', '-3'),
        series('DCGM_FI_DEV_GPU_TEMP', '9223372036854775794'), // int64 blank
        series('DCGM_FI_DEV_POWER_USAGE', '-1.000000'),
        series('DCGM_FI_DEV_POWER_MGMT_LIMIT', '72.000000'),
        series('DCGM_FI_DEV_FB_USED', '140737488355328.000000'), // float blank
        series('DCGM_FI_DEV_FB_FREE', '22000'),
        series('DCGM_FI_DEV_CLOCKS_EVENT_REASONS', '1.5'),
        series('DCGM_FI_DEV_GPU_UTIL', '50', '64'), // beyond the gateway's 0..63
        series('DCGM_FI_DEV_GPU_UTIL', '50', 'x'),
        'DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT{nvswitch="0"} 40',
        'go_goroutines 12',
      ].join('\n'),
    );
    expect(page.gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-x',
        name: 'NVIDIA L4',
        utilizationGpu: null,
        utilizationMemory: 0,
        utilizationEncoder: 100,
        utilizationDecoder: null,
        temperatureGpu: null,
        memoryUsed: null,
        memoryTotal: null,
        powerDraw: null,
        powerLimit: 72,
        encoderSessions: null,
        encoderAvgFps: null,
        throttleActive: null,
      },
    ]);
  });

  it('rejects a page that is not exposition text', () => {
    expect(() => readDcgmPage('<html>502 Bad Gateway</html>')).toThrow(/line 1/);
  });
});

describe('dcgm source: polling a real exporter over HTTP', () => {
  it('samples every interval, field by field the same as the page says', async () => {
    const exporter = await fakeExporter(fixture('nvidia-l40s.x2.metrics'));
    const { samples, up } = source(exporter.url);
    await waitFor(() => samples.length >= 3, { what: 'three samples' });
    for (const sample of samples) expect(sample.gpus).toEqual(expected['nvidia-l40s.x2.metrics']!.gpus);
    expect(samples[1]!.ts - samples[0]!.ts).toBeGreaterThanOrEqual(90);
    expect(up).toEqual([true]);
  });

  it('skips MIG instance series for whole-GPU values', async () => {
    const exporter = await fakeExporter(fixture('nvidia-h100-80gb-hbm3.mig.metrics'));
    const { samples } = source(exporter.url);
    const [first] = await waitFor(() => samples.length > 0 && samples, { what: 'a sample' });
    expect(first!.gpus).toEqual(expected['nvidia-h100-80gb-hbm3.mig.metrics']!.gpus);
  });

  it('gives no sample while the exporter answers 500, hangs past the timeout, or serves garbage', async () => {
    const exporter = await fakeExporter(fixture('nvidia-l4.single.metrics'));
    const { samples, up } = source(exporter.url, 50, 150);
    await waitFor(() => samples.length > 0, { what: 'a first sample' });

    for (const failure of [
      () => Object.assign(exporter.state, { status: 500 }),
      () => Object.assign(exporter.state, { status: 200, hang: true }),
      () => Object.assign(exporter.state, { hang: false, page: 'not { prometheus' }),
      () => Object.assign(exporter.state, { page: '# HELP go_goroutines x\ngo_goroutines 3\n' }),
    ]) {
      failure();
      await sleep(100); // a scrape already under way may still succeed
      const before = samples.length;
      const scrapes = exporter.state.scrapes;
      await waitFor(() => exporter.state.scrapes >= scrapes + 2, { what: 'two more scrapes' });
      expect(samples.length).toBe(before);
      expect(up.at(-1)).toBe(false);
      Object.assign(exporter.state, { status: 200, hang: false, page: fixture('nvidia-l4.single.metrics') });
      await waitFor(() => samples.length > before, { what: 'samples again' });
      expect(up.at(-1)).toBe(true);
    }
  });

  it('stops at once, even with a request in flight', async () => {
    const exporter = await fakeExporter('');
    exporter.state.hang = true;
    const { dcgm } = source(exporter.url, 100, 10_000);
    await waitFor(() => exporter.state.scrapes > 0, { what: 'a scrape' });
    const started = Date.now();
    await dcgm.stop();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('dcgm source in the probe: stale while the exporter is away, fresh when it is back', () => {
  it('pushes the telemetry document, pushes nothing while stale, and resumes', async () => {
    const exporter = await fakeExporter(fixture('nvidia-l4.single.metrics'));
    const pushes: any[] = [];
    const gateway = createServer(async (request, response) => {
      let text = '';
      for await (const chunk of request) text += chunk;
      pushes.push(JSON.parse(text));
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"state":"ready"}');
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => gateway.close(resolve)));

    const intervalMs = 100;
    const staleAfterMs = 3 * intervalMs;
    const metrics = new ProbeMetrics(Date.now, staleAfterMs);
    const probe = new Probe({
      source: new DcgmSource({ url: exporter.url, intervalMs, logger }),
      pusher: new TelemetryPusher({
        vcaUrl: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`,
        nodeId: 'render-l4-01',
        token: 'token',
        logger,
        maxSampleAgeMs: staleAfterMs,
      }),
      metrics,
      logger,
      intervalMs,
      staleAfterMs,
      metricsPort: null,
      pingPort: null,
      inventory: false,
    });
    await probe.start();
    cleanups.push(() => probe.stop());
    const metric = async (name: string) =>
      (await metrics.registry.getSingleMetricAsString(name))
        .split('\n')
        .find((line) => line.startsWith(name));

    await waitFor(() => pushes.length >= 2, { what: 'pushes' });
    expect(pushes[0]).toEqual({ gpus: expected['nvidia-l4.single.metrics']!.gpus, ts: expect.any(Number) });
    expect(await metric('gpu_probe_stale')).toBe('gpu_probe_stale 0');

    await exporter.goAway();
    await waitFor(async () => (await metric('gpu_probe_stale')) === 'gpu_probe_stale 1', { what: 'stale' });
    expect(await metric('gpu_probe_sampler_up')).toBe('gpu_probe_sampler_up 0');
    const whileStale = pushes.length;
    await sleep(4 * intervalMs);
    expect(pushes.length, 'nothing pushed while stale').toBe(whileStale);

    await exporter.comeBack();
    await waitFor(() => pushes.length > whileStale, { what: 'a push after the exporter came back' });
    expect(await metric('gpu_probe_stale')).toBe('gpu_probe_stale 0');
    expect(pushes.at(-1)).toEqual({
      gpus: expected['nvidia-l4.single.metrics']!.gpus,
      ts: expect.any(Number),
    });
    expect(Date.now() - pushes.at(-1).ts).toBeLessThan(staleAfterMs + 1000);
  });
});

describe('gpu-probe --once --source dcgm=URL (the CLI as a child process)', () => {
  it('prints exactly the telemetry document it would push', async () => {
    const exporter = await fakeExporter(fixture('nvidia-h100-80gb-hbm3.mig.metrics'));
    const before = Date.now();
    const run = await runCli(['--once', '--source', `dcgm=${exporter.url}`, '--log-level', 'silent']);
    expect(run.code, run.stderr).toBe(0);
    const ts = JSON.parse(run.stdout).ts;
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(run.stdout).toBe(
      `${JSON.stringify({ gpus: expected['nvidia-h100-80gb-hbm3.mig.metrics']!.gpus, ts })}\n`,
    );
  });

  it('exits 1 naming the reason when the exporter is unreachable, 2 on a bad --source', async () => {
    const exporter = await fakeExporter('');
    await exporter.goAway();
    const unreachable = await runCli(['--once', '--source', `dcgm=${exporter.url}`]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('gpu-probe: DCGM exporter unreachable: ECONNREFUSED');

    for (const args of [
      ['--source', 'dcgm'],
      ['--source', 'dcgm=ftp://host/metrics'],
      ['--source', 'prometheus=http://host'],
      ['--source', 'dcgm=http://host:9400/metrics', '--nvidia-smi', '/usr/bin/nvidia-smi'],
    ]) {
      const bad = await runCli(['--once', ...args]);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr).toContain('--source');
    }
  });
});
