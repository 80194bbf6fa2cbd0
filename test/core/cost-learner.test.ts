/**
 * The cost learner on simulated GPUs whose titles truly cost other than the catalog says: several
 * sessions and titles per GPU, noise, an idle baseline, sample lag; then the ways telemetry goes wrong
 * (a probe stuck at 100 %, a probe reading 0, another process loading the GPU), each of which must
 * leave every learned cost inside its band.
 */
import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../kit/seeded-random.js';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import {
  type CostDimension,
  CostLearner,
  defaultCostLearningSettings,
  type GpuObservation,
  type ObservedSession,
} from '../../src/cost/cost-learner.js';
import { sessionCost } from '../../src/cost/session-cost.js';
import { buildSessionSpec } from '../../src/sessions/session-request.js';

const catalog = new CatalogIndex(
  loadCatalog({ catalog: { gamesFile: 'games.yaml', gpusFile: 'gpus.yaml' } }),
);
const band = defaultCostLearningSettings.band;

interface Title {
  game: string;
  width: number;
  height: number;
  fps: number;
  /** True cost / catalog cost, per dimension. */
  truth: Record<CostDimension, number>;
}

const heavy: Title = {
  game: 'cyberpunk-2077',
  width: 1280,
  height: 720,
  fps: 60,
  truth: { gpu: 1.25, encoder: 1.05, vram: 1.2 },
};
const light: Title = {
  game: 'stardew-valley',
  width: 1920,
  height: 1080,
  fps: 60,
  truth: { gpu: 0.75, encoder: 1, vram: 0.8 },
};
const medium: Title = {
  game: 'rocket-league',
  width: 1920,
  height: 1080,
  fps: 60,
  truth: { gpu: 1.1, encoder: 0.95, vram: 1 },
};

/** What a GPU of `model` running `sessions` truly measures (ppm, ppm, MiB), with noise and a baseline. */
function truthOf(model: string, sessions: readonly { title: Title }[], random: () => number, noise: number) {
  const gpu = catalog.model(model);
  let render = 0;
  let encoder = 0;
  let vram = 450;
  for (const { title } of sessions) {
    const cost = sessionCost(
      { game: catalog.game(title.game), size: { width: title.width, height: title.height }, fps: title.fps },
      gpu,
    )!;
    render += cost.gpu * title.truth.gpu;
    encoder += cost.encoder * title.truth.encoder;
    vram += cost.vramMiB * title.truth.vram;
  }
  const jitter = () => gaussian(random) * noise;
  return {
    gpu: Math.max(0, Math.min(1e6, Math.round(render + jitter()))),
    encoder: Math.max(0, Math.min(1e6, Math.round(encoder + jitter()))),
    vramMiB: Math.max(0, Math.round(vram + (jitter() / 1e6) * 200)),
  };
}

function observation(
  gpuKey: string,
  model: string,
  sessions: readonly { id: string; title: Title }[],
  measured: GpuObservation['measured'],
  extra: Partial<GpuObservation> = {},
): GpuObservation {
  return {
    gpuKey,
    model,
    measured,
    memoryTotalMiB: catalog.model(model).vramMiB,
    reservedVramMiB: 0,
    pendingSessions: 0,
    stale: false,
    throttled: false,
    sessions: sessions.map(
      ({ id, title }): ObservedSession => ({
        id,
        game: title.game,
        width: title.width,
        height: title.height,
        fps: title.fps,
      }),
    ),
    ...extra,
  };
}

/**
 * Drives `gpus` L4s for `rounds` rounds: each round every GPU gets a random mix of 1-3 sessions of the
 * titles, reports twice idle... then twice with the mix (the first report after a change is lag).
 * `measure` may distort what the probe reports.
 */
function simulate(
  learner: Pick<CostLearner, 'observe'>,
  options: {
    titles: Title[];
    rounds: number;
    gpus?: number;
    seed?: number;
    noise?: number;
    measure?: (truth: GpuObservation['measured'], gpu: number) => GpuObservation['measured'];
  },
): void {
  const random = seededRandom(options.seed ?? 1);
  const gpus = options.gpus ?? 4;
  let id = 0;
  for (let round = 0; round < options.rounds; round++) {
    for (let g = 0; g < gpus; g++) {
      const count = 1 + Math.floor(random() * 3);
      const sessions = Array.from({ length: count }, () => ({
        id: `s${++id}`,
        title: options.titles[Math.floor(random() * options.titles.length)]!,
      }));
      const key = `node-${g}#0`;
      const idle = truthOf('L4', [], random, options.noise ?? 10_000);
      learner.observe(observation(key, 'L4', [], options.measure?.(idle, g) ?? idle));
      learner.observe(observation(key, 'L4', [], options.measure?.(idle, g) ?? idle));
      for (let sample = 0; sample < 4; sample++) {
        const truth = truthOf('L4', sessions, random, options.noise ?? 10_000);
        learner.observe(observation(key, 'L4', sessions, options.measure?.(truth, g) ?? truth));
      }
    }
  }
}

/** Simulates, merging and solving every 40 samples (as the gateway flushes every few seconds). */
function learn(options: Parameters<typeof simulate>[1]): CostLearner {
  const learner = new CostLearner(catalog);
  const totals = new Map<string, number>();
  const flush = () => {
    for (const [key, value] of learner.takeDelta()) totals.set(key, (totals.get(key) ?? 0) + value);
    learner.adopt(new Map(totals));
  };
  let observed = 0;
  simulate(
    {
      observe(o) {
        learner.observe(o);
        if (++observed % 40 === 0) flush();
      },
    },
    options,
  );
  flush();
  return learner;
}

function expectWithinBand(learner: CostLearner): void {
  const entries = learner.entries();
  expect(entries.length).toBeGreaterThan(0);
  for (const entry of entries) {
    expect(entry.ratio).toBeGreaterThanOrEqual(band.min);
    expect(entry.ratio).toBeLessThanOrEqual(band.max);
  }
}

describe('cost learner', () => {
  it('learns each title within 5 % of its true cost from GPUs running several titles at once', () => {
    const learner = learn({ titles: [heavy, light, medium], rounds: 100 });
    for (const title of [heavy, light, medium]) {
      for (const dimension of ['gpu', 'encoder', 'vram'] as const) {
        const ratio = learner.ratio(title.game, 'L4', dimension);
        expect(
          Math.abs(ratio - title.truth[dimension]) / title.truth[dimension],
          `${title.game} ${dimension}`,
        ).toBeLessThan(0.05);
      }
    }
  });

  it('keeps the catalog until confident, then uses what it learned; a heavier title after its first session', () => {
    // One round: 1-3 sessions of the title, fewer than the 5 that confidence 0.5 takes by default.
    const early = learn({ titles: [light], rounds: 1, gpus: 1 });
    const entry = early.entries().find((e) => e.game === light.game && e.dimension === 'gpu')!;
    expect(entry.sessions).toBeLessThan(5);
    expect(entry.samples).toBeGreaterThan(0);
    expect(entry.ratio).toBeLessThan(1);
    expect(entry.active).toBe(false);
    expect(early.ratio(light.game, 'L4', 'gpu')).toBe(1);
    const later = learn({ titles: [light], rounds: 30, gpus: 1 });
    expect(later.entries().find((e) => e.game === light.game && e.dimension === 'gpu')!.active).toBe(true);
    expect(later.ratio(light.game, 'L4', 'gpu')).toBeCloseTo(light.truth.gpu, 1);
    // Heavier than the catalog: trusted from the first session on (minConfidenceHeavier).
    const heavier = learn({ titles: [heavy], rounds: 1, gpus: 1 });
    const heavyEntry = heavier.entries().find((e) => e.game === heavy.game && e.dimension === 'gpu')!;
    expect(heavyEntry.sessions).toBeLessThan(5);
    expect(heavyEntry.active).toBe(true);
    expect(heavier.ratio(heavy.game, 'L4', 'gpu')).toBeGreaterThan(1.05);
  });

  it('merges evidence from several instances by addition: the same costs as one instance seeing all', () => {
    const observations: GpuObservation[] = [];
    simulate({ observe: (o) => observations.push(o) }, { titles: [heavy, light], rounds: 40, seed: 3 });
    const one = new CostLearner(catalog);
    // Two instances, each receiving the reports of half the GPUs (a load balancer's split).
    const halves = [new CostLearner(catalog), new CostLearner(catalog)];
    for (const o of observations) {
      one.observe(o);
      halves[Number(o.gpuKey.slice(5, 6)) % 2]!.observe(o);
    }
    one.adopt(one.takeDelta());
    const merged = new Map<string, number>();
    for (const half of halves)
      for (const [key, value] of half.takeDelta()) merged.set(key, (merged.get(key) ?? 0) + value);
    const shared = new CostLearner(catalog);
    shared.adopt(merged);
    for (const entry of one.entries()) {
      expect(shared.ratio(entry.game, entry.model, entry.dimension)).toBeCloseTo(
        one.ratio(entry.game, entry.model, entry.dimension),
        9,
      );
    }
    expect(shared.ratio(heavy.game, 'L4', 'gpu')).toBeCloseTo(heavy.truth.gpu, 1);
  });

  it('learns from GPUs pinned at 100 % that a title does not fit a model, and pricing stops sending it there', () => {
    // cyberpunk-2077 at 1080p60: 0.85 of an L4 in the catalog, truly 1.3x that: the GPU reads 100 %.
    const tooHeavy: Title = { ...heavy, width: 1920, height: 1080, truth: { gpu: 1.3, encoder: 1, vram: 1 } };
    const learner = learn({ titles: [tooHeavy], rounds: 40, gpus: 2 });
    const ratio = learner.ratio(tooHeavy.game, 'L4', 'gpu');
    // It learns the bound the readings give (1 / 0.85), not more: enough to leave the 0.9 headroom.
    expect(ratio).toBeGreaterThan(1.1);
    expect(ratio).toBeLessThanOrEqual(1.3);
    const spec = buildSessionSpec({ game: tooHeavy.game, resolution: '1080p', fps: 60 }, 's', 'rest', {
      catalog,
      headroom: { gpu: 0.9, encoder: 0.9, vram: 0.95 },
      priorityClasses: ['standard'],
      defaultPriority: 'standard',
      learned: learner,
    });
    expect(spec.costs.L4).toBeUndefined();
    expect(spec.costs.L40S).toBeDefined();
  });

  it('ignores samples taken while sessions were pending, right after the session set changed, or throttled', () => {
    const learner = new CostLearner(catalog);
    const sessions = [{ id: 'a', title: heavy }];
    const wrong = { gpu: 990_000 * 0.9, encoder: 500_000, vramMiB: 15_000 };
    // First sight of the GPU, then a changed set: neither is used.
    learner.observe(observation('g#0', 'L4', [], wrong));
    learner.observe(observation('g#0', 'L4', sessions, wrong));
    learner.observe(observation('g#0', 'L4', sessions, wrong, { pendingSessions: 1 }));
    learner.observe(observation('g#0', 'L4', sessions, wrong, { throttled: true }));
    learner.observe(observation('g#0', 'L4', sessions, wrong, { stale: true }));
    expect([...learner.takeDelta().keys()].filter((key) => key.includes('|b|'))).toEqual([]);
  });

  describe('bad telemetry leaves every learned cost within its band', () => {
    const titles = [heavy, light, medium];

    it('a probe stuck at 100 %', () => {
      const learner = learn({
        titles,
        rounds: 60,
        measure: (truth, gpu) => (gpu === 0 ? { gpu: 1e6, encoder: 1e6, vramMiB: truth.vramMiB } : truth),
      });
      expectWithinBand(learner);
      // The stuck probe reads 100 % idle as well: its baseline leaves no evidence, the others learn the truth.
      expect(learner.ratio(heavy.game, 'L4', 'gpu')).toBeCloseTo(heavy.truth.gpu, 1);
    });

    it('a probe reporting 0 for everything', () => {
      const learner = learn({
        titles,
        rounds: 60,
        measure: (truth, gpu) => (gpu === 1 ? { gpu: 0, encoder: 0, vramMiB: 0 } : truth),
      });
      expectWithinBand(learner);
      expect(learner.ratio(light.game, 'L4', 'gpu')).toBeCloseTo(light.truth.gpu, 1);
    });

    it('every probe stuck, or at 0: nothing learned beyond the band', () => {
      expectWithinBand(
        learn({ titles, rounds: 40, measure: () => ({ gpu: 1e6, encoder: 1e6, vramMiB: 23_000 }) }),
      );
      const zero = learn({ titles, rounds: 40, measure: () => ({ gpu: 0, encoder: 0, vramMiB: 0 }) });
      // Implausible readings add no evidence at all: only sessions were counted.
      for (const entry of zero.entries()) expect(entry.samples).toBe(0);
      expect(zero.ratio(heavy.game, 'L4', 'gpu')).toBe(1);
    });

    it('a GPU that another process loads', () => {
      const learner = learn({
        titles,
        rounds: 60,
        // GPU 2 carries 45 % of someone else's render work and 2 GiB of their VRAM, on and off.
        measure: (truth, gpu) =>
          gpu === 2
            ? {
                gpu: Math.min(1e6, (truth.gpu ?? 0) + 450_000),
                encoder: truth.encoder,
                vramMiB: (truth.vramMiB ?? 0) + 2048,
              }
            : truth,
      });
      expectWithinBand(learner);
      const everything = learn({
        titles,
        rounds: 40,
        measure: (truth) => ({
          gpu: Math.min(1e6, (truth.gpu ?? 0) + 450_000),
          encoder: truth.encoder,
          vramMiB: truth.vramMiB,
        }),
      });
      expectWithinBand(everything);
    });
  });
});

describe('pricing with learned costs (buildSessionSpec)', () => {
  const context = {
    catalog,
    headroom: { gpu: 0.9, encoder: 0.9, vram: 0.95 },
    priorityClasses: ['standard'],
    defaultPriority: 'standard',
  };
  const ask = { game: 'cyberpunk-2077', resolution: '1080p', fps: 60 };

  it('scales each dimension by its learned ratio, rounded up', () => {
    const plain = buildSessionSpec(ask, 's1', 'rest', context);
    const learned = buildSessionSpec(ask, 's2', 'rest', {
      ...context,
      learned: {
        version: 1,
        ratio: (_game, model, dimension) => (model === 'L40S' && dimension === 'gpu' ? 0.8 : 1),
      },
    });
    expect(learned.costs.L40S!.gpu).toBe(Math.ceil(plain.costs.L40S!.gpu * 0.8));
    expect(learned.costs.L40S!.encoder).toBe(plain.costs.L40S!.encoder);
    expect(learned.costs.L4).toEqual(plain.costs.L4);
  });

  it('stops sending a format to a GPU model its learned cost no longer fits, and refuses it when none is left', () => {
    const plain = buildSessionSpec(ask, 's1', 'rest', context);
    // cyberpunk-2077 at 1080p60 fits an L4 on the catalog (0.85 of 0.9); 1.2x that does not.
    expect(plain.costs.L4).toBeDefined();
    const heavier = buildSessionSpec(ask, 's2', 'rest', {
      ...context,
      learned: {
        version: 1,
        ratio: (_game, model, dimension) => (model === 'L4' && dimension === 'gpu' ? 1.2 : 1),
      },
    });
    expect(heavier.costs.L4).toBeUndefined();
    expect(Object.keys(heavier.costs).length).toBe(Object.keys(plain.costs).length - 1);
    expect(() =>
      buildSessionSpec({ ...ask, gpuModels: ['L4'] }, 's3', 'rest', {
        ...context,
        learned: { version: 1, ratio: () => 2 },
      }),
    ).toThrow(/No GPU model among those requested can render/);
  });
});

describe('a title heavier than the catalog on one model, on a model with no evidence yet', () => {
  it('is priced at the ratio learned elsewhere; a lighter one stays at the catalog', () => {
    const learner = learn({ titles: [heavy, light], rounds: 30 });
    expect(learner.ratio(heavy.game, 'L4', 'gpu')).toBeGreaterThan(1.1);
    expect(learner.entries().some((entry) => entry.model === 'T4')).toBe(false);
    expect(learner.ratio(heavy.game, 'T4', 'gpu')).toBeCloseTo(learner.ratio(heavy.game, 'L4', 'gpu'), 9);
    expect(learner.ratio(light.game, 'L4', 'gpu')).toBeLessThan(0.9);
    expect(learner.ratio(light.game, 'T4', 'gpu')).toBe(1);
  });
});
