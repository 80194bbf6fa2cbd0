import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { GpuReading } from '../../gpu-probe/src/gpu-reading.js';
import { SimulatedGpu, trueCostFactor } from '../../gpu-probe/src/simulated-gpu.js';
import { type PushOutcome, TelemetryPusher } from '../../gpu-probe/src/telemetry-pusher.js';
import type { TelemetrySample } from '../../gpu-probe/src/telemetry-sample.js';
import { loadCatalog } from '../../src/config/index.js';
import { CatalogIndex } from '../../src/cost/index.js';
import { waitFor } from './support/fake-smi.js';

const logger = pino({ level: 'silent' });

interface Received {
  url: string;
  authorization: string | undefined;
  body: any;
}

/** A stand-in gateway: answers each PUT with the next scripted status (then 200), records what came. */
async function stubGateway(script: number[] = [], answer: unknown = { state: 'ready' }) {
  const received: Received[] = [];
  const server: Server = createServer(async (request: IncomingMessage, response) => {
    let text = '';
    for await (const chunk of request) text += chunk;
    received.push({
      url: request.url!,
      authorization: request.headers.authorization,
      body: JSON.parse(text),
    });
    const status = script.shift() ?? 200;
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const reading = (utilizationGpu: number): GpuReading => ({
  index: 0,
  uuid: 'GPU-x',
  name: 'NVIDIA L4',
  utilizationGpu,
  utilizationMemory: null,
  utilizationEncoder: 10,
  utilizationDecoder: null,
  temperatureGpu: 50,
  memoryUsed: 100,
  memoryTotal: 23034,
  powerDraw: 30,
  powerLimit: 72,
  encoderSessions: 1,
  encoderAvgFps: 60,
  throttleActive: false,
});
const sample = (utilizationGpu: number, ts = Date.now()): TelemetrySample => ({
  ts,
  gpus: [reading(utilizationGpu)],
});

function pusher(url: string, options: Partial<ConstructorParameters<typeof TelemetryPusher>[0]> = {}) {
  const outcomes: PushOutcome[] = [];
  const instance = new TelemetryPusher({
    vcaUrl: `${url}/`,
    nodeId: 'render 1',
    token: 'node-token',
    logger,
    maxSampleAgeMs: 10_000,
    retryBaseMs: 40,
    random: () => 0.5,
    onOutcome: (outcome) => outcomes.push(outcome),
    ...options,
  });
  cleanups.push(() => instance.stop());
  return { instance, outcomes };
}

describe('gpu-probe pusher', () => {
  it('PUTs the telemetry document to /v1/nodes/:id/telemetry with the node token', async () => {
    const gw = await stubGateway();
    const { instance, outcomes } = pusher(gw.url);
    const taken = sample(42);
    instance.offer(taken);
    await waitFor(() => outcomes.length === 1, { what: 'one push' });
    expect(outcomes).toEqual(['accepted']);
    expect(gw.received).toEqual([
      {
        url: '/v1/nodes/render%201/telemetry',
        authorization: 'Bearer node-token',
        body: { gpus: [reading(42)], ts: taken.ts },
      },
    ]);
  });

  it('keeps only the newest unsent sample while a push is in flight or backing off', async () => {
    const gw = await stubGateway([503, 503]);
    const { instance, outcomes } = pusher(gw.url);
    instance.offer(sample(1));
    for (let value = 2; value <= 9; value++) instance.offer(sample(value));
    await waitFor(() => outcomes.filter((outcome) => outcome === 'accepted').length === 1, {
      what: 'acceptance',
    });
    expect(outcomes).toEqual(['failed', 'failed', 'accepted']);
    // The first failed; retries carried only the newest sample, never the pile in between.
    expect(gw.received.map((request) => request.body.gpus[0].utilizationGpu)).toEqual([1, 9, 9]);
  });

  it('backs off exponentially (with jitter) on 5xx, 408, 429 and network errors', async () => {
    const gw = await stubGateway([500, 429, 408]);
    const { instance, outcomes } = pusher(gw.url, { retryBaseMs: 50 });
    const started = Date.now();
    instance.offer(sample(5));
    await waitFor(() => outcomes.at(-1) === 'accepted', { what: 'acceptance after three failures' });
    // Delays with jitter fixed at 0.5: 37.5 + 75 + 150 ms, at least.
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(outcomes).toEqual(['failed', 'failed', 'failed', 'accepted']);

    const unreachable = pusher('http://127.0.0.1:1', { retryBaseMs: 20, retryMaxMs: 40 });
    unreachable.instance.offer(sample(6));
    await waitFor(() => unreachable.outcomes.length >= 3, { what: 'retries against a closed port' });
    expect(new Set(unreachable.outcomes)).toEqual(new Set(['failed']));
  });

  it('does not retry a 4xx other than 408/429, and still sends the next fresh sample', async () => {
    const gw = await stubGateway([401]);
    const { instance, outcomes } = pusher(gw.url);
    instance.offer(sample(1));
    await waitFor(() => outcomes.length === 1, { what: 'the rejection' });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(outcomes).toEqual(['rejected']);
    expect(gw.received).toHaveLength(1);
    instance.offer(sample(2));
    await waitFor(() => outcomes.length === 2, { what: 'the next push' });
    expect(outcomes).toEqual(['rejected', 'accepted']);
  });

  it('drops a sample too old to be true instead of sending it (the gateway dates reports by arrival)', async () => {
    const gw = await stubGateway();
    const { instance, outcomes } = pusher(gw.url, { maxSampleAgeMs: 1000 });
    instance.offer(sample(1, Date.now() - 5000));
    await waitFor(() => outcomes.length === 1, { what: 'the drop' });
    expect(outcomes).toEqual(['dropped']);
    expect(gw.received).toEqual([]);
  });

  it('gives up a request that takes longer than its timeout', async () => {
    const server = createServer(() => {}); // accepts and never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    });
    const { instance, outcomes } = pusher(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
      requestTimeoutMs: 100,
      retryBaseMs: 10_000,
    });
    instance.offer(sample(1));
    await waitFor(() => outcomes.length === 1, { what: 'the timeout', timeoutMs: 2000 });
    expect(outcomes).toEqual(['failed']);
  });
});

describe('gpu-probe simulation', () => {
  const catalog = new CatalogIndex(
    loadCatalog({ catalog: { gamesFile: 'games.yaml', gpusFile: 'gpus.yaml' } }),
  );
  const l4 = catalog.model('L4');

  function simulated(now: { value: number }, seed = 1, gpuCount = 1) {
    return new SimulatedGpu({ model: l4, catalog, gpuCount, intervalMs: 1000, seed, now: () => now.value });
  }

  it('reads exactly idle with no sessions', () => {
    const gpu = simulated({ value: 0 }).sample().gpus[0]!;
    expect(gpu).toMatchObject({
      utilizationGpu: 0,
      utilizationEncoder: 0,
      encoderSessions: 0,
      memoryTotal: 23034,
      temperatureGpu: 35,
      throttleActive: false,
    });
  });

  it('follows the sessions of a telemetry answer: true render cost, NVENC pixel rate, VRAM model', () => {
    const now = { value: 0 };
    const sim = simulated(now, 3, 2);
    sim.learnFromAnswer({
      sessions: [
        { sessionId: 's1', gpu: 0, game: 'unigine-heaven', width: 1920, height: 1080, fps: 60 },
        { sessionId: 's2', gpu: 0, game: 'unigine-heaven', width: 1920, height: 1080, fps: 60 },
        { sessionId: 'bad', gpu: 'zero', game: 'x' },
      ],
    });
    expect(sim.sessionCount).toBe(2);
    const [busy, idle] = sim.sample().gpus;
    const heaven = catalog.game('unigine-heaven');
    const render = 2 * heaven.gpuCostAt1080p60 * trueCostFactor('unigine-heaven') * 100;
    expect(busy!.utilizationGpu).toBeGreaterThanOrEqual(Math.min(100, Math.floor(render - 2)));
    expect(busy!.utilizationGpu).toBeLessThanOrEqual(Math.min(100, Math.ceil(render + 2)));
    const encoder = ((2 * 1920 * 1080 * 60) / l4.encoderPixelRate) * 100;
    expect(Math.abs(busy!.utilizationEncoder! - encoder)).toBeLessThanOrEqual(2);
    expect(busy!.memoryUsed).toBe(
      250 + 2 * Math.ceil(heaven.vramBaseMiB + heaven.vramPerMegapixelMiB * 2.0736),
    );
    expect(busy!).toMatchObject({ encoderSessions: 2, encoderAvgFps: 60 });
    expect(idle).toMatchObject({ utilizationGpu: 0, encoderSessions: 0 });
    // An answer without the list changes nothing; an empty list clears it.
    sim.learnFromAnswer({ state: 'ready' });
    expect(sim.sessionCount).toBe(2);
    sim.learnFromAnswer({ sessions: [] });
    expect(sim.sessionCount).toBe(0);
  });

  it('gives each title a fixed true-cost factor in [0.8, 1.25)', () => {
    for (const id of catalog.catalog.games.keys()) {
      expect(trueCostFactor(id)).toBeGreaterThanOrEqual(0.8);
      expect(trueCostFactor(id)).toBeLessThan(1.25);
      expect(trueCostFactor(id)).toBe(trueCostFactor(id));
    }
  });

  it('heats up with a 30 s first-order lag and draws power in proportion to load', () => {
    const now = { value: 0 };
    const sim = simulated(now);
    const idlePower = sim.sample().gpus[0]!.powerDraw!;
    sim.setSessions(
      Array.from({ length: 4 }, (_, index) => ({
        sessionId: `s${index}`,
        gpu: 0,
        game: 'cyberpunk-2077',
        width: 1920,
        height: 1080,
        fps: 60,
      })),
    );
    const temperatures: number[] = [];
    for (let second = 30; second <= 300; second += 30) {
      now.value = second * 1000;
      temperatures.push(sim.sample().gpus[0]!.temperatureGpu!);
    }
    const equilibrium = temperatures.at(-1)!;
    expect(equilibrium).toBeGreaterThan(60);
    expect(equilibrium).toBeLessThan(l4.throttleTemperatureCelsius);
    // After one time constant the step is ~63 % done.
    const share = (temperatures[0]! - 35) / (equilibrium - 35);
    expect(share).toBeGreaterThan(0.55);
    expect(share).toBeLessThan(0.72);
    expect(sim.sample().gpus[0]!.powerDraw!).toBeGreaterThan(3 * idlePower);
  });

  it('is reproducible for a seed', () => {
    const run = (seed: number) => {
      const now = { value: 0 };
      const sim = simulated(now, seed);
      sim.setSessions([{ sessionId: 's', gpu: 0, game: 'fortnite', width: 2560, height: 1440, fps: 60 }]);
      return Array.from({ length: 5 }, (_, step) => {
        now.value = step * 1000;
        return sim.sample().gpus[0];
      });
    };
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
  });
});
