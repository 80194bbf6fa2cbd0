/**
 * Learned title costs through the real gateway: a node whose probe reports what a title truly costs
 * (30 % more render than the catalog says), gamers playing it one after another; the gateway learns the
 * cost, shows it (GET /v1/costs, vca_cost_ratio), prices new sessions with it, forgets it on an
 * operator's reset; and on Redis every instance shares it and a restart keeps it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import { sessionCost } from '../../src/cost/session-cost.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { eventually, getNode, type ReadyNode, readyNode } from './gamer-flow.js';

const format = { game: 'rocket-league', resolution: '1080p', fps: 60 } as const;
const truth = { gpu: 1.3, encoder: 1, vram: 1 };
const catalog = new CatalogIndex(
  loadCatalog({ catalog: { gamesFile: 'games.yaml', gpusFile: 'gpus.yaml' } }),
);
const catalogCost = sessionCost(
  { game: catalog.game(format.game), size: { width: 1920, height: 1080 }, fps: 60 },
  catalog.model('L4'),
)!;

/**
 * Placement trusts a learned cost after 8 sessions here (confidence 8 / (8 + 2) = 0.8); the pull to the
 * catalog is one sample's worth, as the test's sessions report only a few samples each (a real probe
 * reports every 2 s for a whole game).
 */
const learning = { flushSeconds: 0.1, confidenceSessions: 2, minConfidence: 0.8, priorSamples: 1 };

const gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gw) => gw.close()));
});

async function start(overrides: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startTestGateway({ costs: { learning }, ...overrides });
  gateways.push(gw);
  return gw;
}

/** The node's probe: what `sessions` truly load the GPU with (the truth, not the catalog). */
function trueTelemetry(sessions: number) {
  return [
    {
      index: 0,
      utilizationGpu: (sessions * catalogCost.gpu * truth.gpu) / 10_000,
      utilizationEncoder: (sessions * catalogCost.encoder * truth.encoder) / 10_000,
      memoryUsed: 300 + sessions * catalogCost.vramMiB * truth.vram,
      temperatureGpu: 50,
      encoderSessions: sessions,
    },
  ];
}

/** `count` gamers play in turn on `node`; the probe reports the truth a few times during each. */
async function play(gw: TestGateway, node: ReadyNode, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const created = await gw.request('gamer', 'POST', '/v1/sessions', format);
    expect(created.status).toBe(201);
    for (let sample = 0; sample < 3; sample++) {
      gw.clock.advance(1_000);
      expect((await gw.telemetry(node.id, node.token, trueTelemetry(1))).status).toBe(200);
    }
    expect((await gw.request('gamer', 'DELETE', `/v1/sessions/${created.body.sessionId}`)).status).toBe(200);
    for (let sample = 0; sample < 2; sample++) {
      gw.clock.advance(1_000);
      await gw.telemetry(node.id, node.token, trueTelemetry(0));
    }
  }
}

async function learnedRender(gw: TestGateway) {
  const answer = await gw.request('operator', 'GET', '/v1/costs');
  expect(answer.status).toBe(200);
  return (answer.body.costs as any[]).find(
    (entry) => entry.game === format.game && entry.model === 'L4' && entry.dimension === 'gpu',
  );
}

describe('learned costs through the gateway', () => {
  it('learns a title heavier than its price, shows it, prices new sessions with it, and forgets it on reset', async () => {
    const gw = await start();
    const node = await readyNode(gw, 'render-a');
    expect((await gw.request('operator', 'GET', '/v1/costs')).body).toEqual({ learning: true, costs: [] });
    await play(gw, node, 10);
    // Every session's samples but the first after it started (lag) are evidence: 2 per session.
    const entry = await eventually(async () => {
      const found = await learnedRender(gw);
      expect(found?.samples).toBe(20);
      return found;
    });
    expect(entry.active).toBe(true);
    expect(Math.abs(entry.ratio - truth.gpu) / truth.gpu).toBeLessThan(0.05);
    expect(entry.catalog).toBe(catalogCost.gpu);
    expect(entry.learned).toBe(Math.ceil(catalogCost.gpu * entry.ratio));
    expect(entry.format).toEqual({ resolution: '1920x1080', fps: 60 });
    expect(entry.sessions).toBe(10);

    const metrics = await gw.request('operator', 'GET', '/metrics');
    const line = (metrics.body as string)
      .split('\n')
      .find((text) => text.startsWith('vca_cost_ratio{game="rocket-league",model="L4",dimension="gpu"}'));
    expect(Number(line?.split(' ')[1])).toBeCloseTo(entry.ratio, 6);

    // A new session is priced with the learned cost.
    const priced = await gw.request('gamer', 'POST', '/v1/sessions', format);
    expect(priced.status).toBe(201);
    const ratio = (await learnedRender(gw)).ratio;
    expect((await getNode(gw, 'render-a')).gpus[0].committed.gpu).toBe(Math.ceil(catalogCost.gpu * ratio));
    await gw.request('gamer', 'DELETE', `/v1/sessions/${priced.body.sessionId}`);

    // Only an operator resets, and only a title of the catalog.
    expect((await gw.request('gamer', 'POST', `/v1/costs/${format.game}/reset`)).status).toBe(403);
    expect((await gw.request('operator', 'POST', '/v1/costs/no-such-game/reset')).status).toBe(422);
    const reset = await gw.request('operator', 'POST', `/v1/costs/${format.game}/reset`);
    expect(reset.status).toBe(200);
    expect(reset.body.removed).toBeGreaterThan(0);
    expect(await learnedRender(gw)).toBeUndefined();
    const catalogPriced = await gw.request('gamer', 'POST', '/v1/sessions', format);
    expect((await getNode(gw, 'render-a')).gpus[0].committed.gpu).toBe(catalogCost.gpu);
    await gw.request('gamer', 'DELETE', `/v1/sessions/${catalogPriced.body.sessionId}`);
  });

  it('learns nothing and prices on the catalog with costs.learning.enabled false', async () => {
    const gw = await start({ costs: { learning: { ...learning, enabled: false } } });
    const node = await readyNode(gw, 'render-a');
    await play(gw, node, 10);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await gw.request('operator', 'GET', '/v1/costs')).body).toEqual({ learning: false, costs: [] });
    await gw.request('gamer', 'POST', '/v1/sessions', format);
    expect((await getNode(gw, 'render-a')).gpus[0].committed.gpu).toBe(catalogCost.gpu);
  });
});

describe('learned costs on Redis: shared by every instance, kept across restarts', () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedisServer();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('an instance that never saw the telemetry uses what another learned; a restarted one still has it', async () => {
    const store = { kind: 'redis', redis: { url: redis.url, keyPrefix: `learned-${Date.now()}` } };
    const a = await start({ store });
    const b = await start({ store });
    const node = await readyNode(a, 'render-a');
    await play(a, node, 10);
    // B received none of the telemetry: it has the costs from the store, the same as A once both flushed.
    const [learnedByA, seenByB] = await eventually(async () => {
      const found = [await learnedRender(a), await learnedRender(b)];
      expect(found[0]?.samples).toBe(20);
      expect(found[0]?.active).toBe(true);
      expect(found[1]?.ratio).toBeCloseTo(found[0]?.ratio, 9);
      return found;
    });
    expect(Math.abs(learnedByA.ratio - truth.gpu) / truth.gpu).toBeLessThan(0.05);
    expect(seenByB.active).toBe(true);
    const priced = await b.request('gamer', 'POST', '/v1/sessions', format);
    expect(priced.status).toBe(201);
    expect((await getNode(b, 'render-a')).gpus[0].committed.gpu).toBe(
      Math.ceil(catalogCost.gpu * seenByB.ratio),
    );
    await b.request('gamer', 'DELETE', `/v1/sessions/${priced.body.sessionId}`);

    // Every instance stops; a new one starts on the same store and knows the costs at once.
    await Promise.all(gateways.splice(0).map((gw) => gw.close()));
    const c = await start({ store });
    const afterRestart = await eventually(async () => {
      const found = await learnedRender(c);
      expect(found?.active).toBe(true);
      return found;
    });
    expect(afterRestart.ratio).toBeCloseTo(learnedByA.ratio, 9);
  });
});
