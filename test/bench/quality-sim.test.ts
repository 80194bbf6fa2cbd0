/** The placement-quality simulator's own arithmetic: its agenda, the GPU truth it integrates, its trace. */
import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../bench/quality/event-queue.js';
import { GpuTruth } from '../../bench/quality/gpu-truth.js';
import { policies } from '../../bench/quality/policies.js';
import { defaultSimulationOptions, simulatePolicy, trueRatio } from '../../bench/quality/simulation.js';
import {
  buildTrace,
  defaultTraceOptions,
  loadProfile,
  trueCatalog,
  trueSessionCost,
} from '../../bench/quality/trace.js';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { loadConfig } from '../../src/config/load-config.js';
import { referencePixelRate, sessionCost } from '../../src/cost/session-cost.js';

const catalog = loadCatalog(loadConfig({ env: {} }));
const l4 = catalog.gpuModels.get('L4')!;

describe('quality simulator: agenda', () => {
  it('pops events by time, ties in the order they were scheduled', () => {
    const queue = new EventQueue<string>();
    queue.push(30, 'c');
    queue.push(10, 'a1');
    queue.push(20, 'b');
    queue.push(10, 'a2');
    const order: string[] = [];
    for (let next = queue.pop(); next; next = queue.pop()) order.push(next.item);
    expect(order).toEqual(['a1', 'a2', 'b', 'c']);
  });
});

describe('quality simulator: GPU truth', () => {
  const gpu = { key: 'n#0', nodeId: 'n', index: 0, model: l4, baselineVramMiB: 500 };
  const cost = (render: number) => ({ gpu: render, encoder: 100_000, vramMiB: 2000, encoderSessions: 1 });

  it('counts a session from its start ramp until it ends, and remembers the past for lagging samples', () => {
    const truth = new GpuTruth(gpu);
    truth.place({
      id: 's1',
      game: 'g',
      format: 'f',
      cost: cost(600_000),
      effectiveFrom: 1000,
      endedAt: Infinity,
      active: false,
    });
    expect(truth.placed).toBe(1);
    expect(truth.now.render).toBe(0);
    truth.activate('s1');
    expect(truth.now).toEqual({ render: 600_000, encoder: 100_000, vramMiB: 2000, sessions: 1 });
    truth.end('s1', 4000);
    expect(truth.now.sessions).toBe(0);
    expect(truth.placed).toBe(0);
    expect(truth.loadAt(500).sessions).toBe(0);
    expect(truth.loadAt(3999).render).toBe(600_000);
    expect(truth.loadAt(4000).render).toBe(0);
  });

  it('integrates overload and degraded session time only while a dimension is over 100 %', () => {
    const truth = new GpuTruth(gpu);
    truth.place({
      id: 'a',
      game: 'g1',
      format: 'f',
      cost: cost(600_000),
      effectiveFrom: 0,
      endedAt: Infinity,
      active: false,
    });
    truth.place({
      id: 'b',
      game: 'g2',
      format: 'f',
      cost: cost(500_000),
      effectiveFrom: 0,
      endedAt: Infinity,
      active: false,
    });
    truth.activate('a');
    expect(truth.accrue(1000)).toBe(0);
    truth.activate('b');
    expect(truth.isOverloaded()).toBe(true);
    expect(truth.accrue(2000)).toBe(4000);
    truth.end('b', 3000);
    expect(truth.accrue(1000)).toBe(0);
    expect(truth.overloadMs).toBe(2000);
    expect(truth.overloadMsByDimension).toEqual({ render: 2000, encoder: 0, vram: 0 });
    expect(Object.fromEntries(truth.degradedMsByGame)).toEqual({ g1: 2000, g2: 2000 });
  });

  it('tells overload by one session alone (a format that does not fit the model) from overload by several', () => {
    const truth = new GpuTruth(gpu);
    truth.place({
      id: 'big',
      game: 'g',
      format: 'g 1920x1080@60',
      cost: cost(1_030_000),
      effectiveFrom: 0,
      endedAt: Infinity,
      active: false,
    });
    truth.activate('big');
    truth.accrue(1000);
    truth.place({
      id: 'small',
      game: 'h',
      format: 'f',
      cost: cost(10_000),
      effectiveFrom: 0,
      endedAt: Infinity,
      active: false,
    });
    truth.activate('small');
    truth.accrue(500);
    expect(truth.overloadMs).toBe(1500);
    expect(truth.overloadAloneMs).toBe(1000);
    expect(Object.fromEntries(truth.overloadAloneMsByFormat)).toEqual({ 'g 1920x1080@60': 1000 });
  });

  it('counts the idle VRAM footprint against the total', () => {
    const truth = new GpuTruth(gpu);
    const vram = l4.vramMiB - gpu.baselineVramMiB;
    truth.place({
      id: 'v',
      game: 'g',
      format: 'f',
      cost: { gpu: 1, encoder: 1, vramMiB: vram, encoderSessions: 1 },
      effectiveFrom: 0,
      endedAt: Infinity,
      active: false,
    });
    truth.activate('v');
    expect(truth.isOverloaded()).toBe(false);
    truth.now.vramMiB += 1;
    expect(truth.isOverloaded()).toBe(true);
  });
});

describe('quality simulator: trace', () => {
  const options = { ...defaultTraceOptions, seed: 11, durationSeconds: 1800 };
  const trace = buildTrace(catalog, options);

  it('is the same for the same seed', () => {
    const again = buildTrace(catalog, options);
    expect(again.arrivals).toEqual(trace.arrivals);
    expect([...again.titles.values()]).toEqual([...trace.titles.values()]);
  });

  it('builds the fleet of the issue: 24 nodes, 29 GPUs, six models that can stream', () => {
    expect(trace.nodes).toHaveLength(24);
    expect(trace.gpus).toHaveLength(29);
    expect(new Set(trace.gpus.map((gpu) => gpu.model.name)).size).toBe(6);
    for (const gpu of trace.gpus) {
      expect(gpu.model.nvencEngines).toBeGreaterThan(0);
      expect(gpu.baselineVramMiB).toBeGreaterThanOrEqual(300);
      expect(gpu.baselineVramMiB).toBeLessThanOrEqual(600);
    }
  });

  it('draws true/catalog factors within their bounds', () => {
    for (const title of trace.titles.values()) {
      for (const factor of [title.renderFactor, title.vramFactor]) {
        expect(factor).toBeGreaterThanOrEqual(0.72);
        expect(factor).toBeLessThanOrEqual(1.3);
      }
    }
    for (const factor of trace.encoderFactors.values()) {
      expect(factor).toBeGreaterThanOrEqual(1);
      expect(factor).toBeLessThanOrEqual(1.1);
    }
  });

  it('prices the truth as the catalog cost times the factors, and the oracle catalog says the same', () => {
    const game = catalog.games.get('fortnite')!;
    const size = { width: 1920, height: 1080 };
    const priced = sessionCost({ game, size, fps: 60 }, l4)!;
    const truth = trueSessionCost(trace, game, size, 60, l4)!;
    const title = trace.titles.get('fortnite')!;
    expect(truth.gpu).toBe(Math.round(priced.gpu * title.renderFactor));
    expect(truth.vramMiB).toBe(Math.round(priced.vramMiB * title.vramFactor));
    expect(truth.encoder).toBe(Math.round(priced.encoder * trace.encoderFactors.get('L4')!));
    const oracle = trueCatalog(trace);
    const oraclePriced = sessionCost(
      { game: oracle.games.get('fortnite')!, size, fps: 60 },
      oracle.gpuModels.get('L4')!,
    )!;
    expect(Math.abs(oraclePriced.gpu - truth.gpu)).toBeLessThanOrEqual(1);
    expect(Math.abs(oraclePriced.encoder - truth.encoder)).toBeLessThanOrEqual(1);
    expect(Math.abs(oraclePriced.vramMiB - truth.vramMiB)).toBeLessThanOrEqual(1);
  });

  it('offers the peak load on the tightest dimension at the plateau', () => {
    const shares = trace.peakDemandShare;
    expect(Math.max(shares.render, shares.encoder, shares.vram)).toBeCloseTo(options.peakLoad, 9);
    // Render demand in reference GPUs at the peak, from the arrivals of the plateau (Little's law).
    const plateauStart = options.durationSeconds * 1000 * options.rampShare;
    const plateau = trace.arrivals.filter((arrival) => arrival.at >= plateauStart);
    const seconds = options.durationSeconds - plateauStart / 1000;
    let renderSeconds = 0;
    for (const arrival of plateau) {
      const game = catalog.games.get(arrival.game)!;
      const pixels = arrival.size.width * arrival.size.height * arrival.fps;
      renderSeconds +=
        game.gpuCostAt1080p60 *
        trace.titles.get(arrival.game)!.renderFactor *
        (pixels / referencePixelRate) *
        (arrival.playMs / 1000);
    }
    const capacity = trace.gpus.reduce((sum, gpu) => sum + gpu.model.renderCapacity, 0);
    // Sampling error of ~600 arrivals with heavy-tailed lengths: within 20 %.
    expect(renderSeconds / seconds / capacity / shares.render).toBeGreaterThan(0.8);
    expect(renderSeconds / seconds / capacity / shares.render).toBeLessThan(1.2);
  });

  it('ramps arrivals from 20 % to the plateau', () => {
    expect(loadProfile(0, options)).toBeCloseTo(0.2);
    expect(loadProfile(options.durationSeconds * 1000 * options.rampShare, options)).toBe(1);
    expect(loadProfile(options.durationSeconds * 1000, options)).toBe(1);
  });
});

describe('quality simulator: learned-cost truth', () => {
  const trace = buildTrace(catalog, { ...defaultTraceOptions, seed: 3, durationSeconds: 60 });

  it('compares render and VRAM ratios with the title, encoder ratios with the model', () => {
    const title = trace.titles.get('fortnite')!;
    expect(trueRatio(trace, 'fortnite', 'L4', 'gpu')).toBe(title.renderFactor);
    expect(trueRatio(trace, 'fortnite', 'L4', 'vram')).toBe(title.vramFactor);
    expect(trueRatio(trace, 'fortnite', 'T4', 'encoder')).toBe(trace.encoderFactors.get('T4'));
  });
});

describe('quality simulator: a run', () => {
  const trace = buildTrace(catalog, { ...defaultTraceOptions, seed: 5, durationSeconds: 300 });

  it('accounts for every arrival once, and the oracle never overloads a GPU', async () => {
    const result = await simulatePolicy(trace, policies.oracle, {
      ...defaultSimulationOptions,
      noiseSeed: 5,
    });
    expect(result.admitted + result.timedOut + result.queuedAtEnd + result.refused).toBe(result.arrivals);
    expect(result.refused).toBe(0);
    expect(result.leaseExpired).toBe(0);
    expect(result.overloadGpuSeconds).toBe(0);
    expect(result.admitted).toBeGreaterThan(0);
  });

  it('runs the VCA with telemetry on the same trace without expiring a heartbeating gamer', async () => {
    const result = await simulatePolicy(trace, policies.packed, {
      ...defaultSimulationOptions,
      noiseSeed: 5,
    });
    expect(result.admitted + result.timedOut + result.queuedAtEnd + result.refused).toBe(result.arrivals);
    expect(result.leaseExpired).toBe(0);
  });
});
