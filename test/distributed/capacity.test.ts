/**
 * Distributed mode under load: thousands of concurrent allocations from many clients, spread over
 * three gateway processes on one Redis, against a capacity known exactly in advance. The store's
 * atomic pick-and-reserve admits exactly that many, refuses the rest cleanly, and the ledger balances.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayProcess, reportIdle, stopAllGatewayProcesses } from '../../kit/gateway-process.js';
import { eventually } from '../../kit/polling.js';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import { parseResolution } from '../../src/cost/resolution.js';
import { sessionCost } from '../../src/cost/session-cost.js';
import {
  type ApiAnswer,
  api,
  defineGatewayGroup,
  type GatewayGroup,
  mapLimit,
  openGroupStore,
  registerNode,
  startGroupGateway,
} from '../support/gateway-group.js';

const format = { game: 'unigine-heaven', resolution: '1080p', fps: 60 } as const;
const model = 'L4';
const nodeCount = 25;
const gpusPerNode = 4;
const requestCount = 2_000;
const inFlight = 64;

let redis: RedisServer;
let cluster: GatewayGroup;
let gateways: GatewayProcess[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  cluster = defineGatewayGroup(redis.url);
  gateways = await Promise.all(['A', 'B', 'C'].map((name) => startGroupGateway(cluster, name)));
}, 60_000);

afterAll(async () => {
  await stopAllGatewayProcesses();
  cluster?.dispose();
  await redis?.stop();
});

/** Sessions of `format` one GPU of `model` holds under the configured headroom, from the cost model. */
function slotsPerGpu(): number {
  const catalog = new CatalogIndex(loadCatalog(cluster.config));
  const game = catalog.game(format.game);
  const gpu = catalog.model(model);
  const cost = sessionCost({ game, size: parseResolution(format.resolution), fps: format.fps }, gpu)!;
  const { headroom } = cluster.config.placement;
  const fits = [
    Math.floor(Math.floor(headroom.gpu * 1_000_000) / cost.gpu),
    Math.floor(Math.floor(headroom.encoder * 1_000_000) / cost.encoder),
    Math.floor(Math.floor(headroom.vram * gpu.vramMiB) / cost.vramMiB),
  ];
  if (gpu.encoderSessionLimit !== null) fits.push(gpu.encoderSessionLimit);
  return Math.min(...fits);
}

describe('distributed: concurrent allocations over three gateways against a known capacity', () => {
  it(`${requestCount} concurrent requests (wait:false, ${inFlight} in flight, round-robin over 3 instances) admit exactly the capacity; the rest get 503 VCA_ERR_NO_CAPACITY; the ledger balances`, async () => {
    const perGpu = slotsPerGpu();
    expect(perGpu).toBe(2); // 0.4 of an L4 each under the 0.9 GPU headroom
    const capacity = nodeCount * gpusPerNode * perGpu;

    // Nodes registered through every instance in turn, telemetry through the next one.
    const nodes = await mapLimit(
      Array.from({ length: nodeCount }, (_, index) => index),
      8,
      async (index) => {
        const node = await registerNode(gateways[index % 3]!.url, `render-${index}`, model, gpusPerNode);
        await reportIdle(gateways[(index + 1) % 3]!.url, node);
        return node;
      },
    );
    expect(nodes).toHaveLength(nodeCount);

    const started = Date.now();
    const answers = await mapLimit(
      Array.from({ length: requestCount }, (_, index) => index),
      inFlight,
      (index) => api(gateways[index % 3]!.url, 'gamer', 'POST', '/v1/sessions', { ...format, wait: false }),
    );
    const elapsedMs = Date.now() - started;
    const byOutcome = new Map<string, number>();
    for (const answer of answers) {
      const key = answer.status === 201 ? '201' : `${answer.status} ${answer.body?.code}`;
      byOutcome.set(key, (byOutcome.get(key) ?? 0) + 1);
    }
    console.info(
      `distributed capacity: ${requestCount} requests in ${elapsedMs} ms (${Math.round((requestCount * 1000) / elapsedMs)}/s): ${JSON.stringify(Object.fromEntries(byOutcome))}`,
    );
    expect(Object.fromEntries(byOutcome)).toEqual({
      '201': capacity,
      '503 VCA_ERR_NO_CAPACITY': requestCount - capacity,
    });
    const admitted = answers.filter((answer) => answer.status === 201);
    expect(new Set(admitted.map((answer) => answer.body.sessionId)).size).toBe(capacity);
    // Every instance admitted some: the three really competed for the same capacity.
    const perInstance = [0, 1, 2].map(
      (instance) => answers.filter((answer, index) => index % 3 === instance && answer.status === 201).length,
    );
    for (const count of perInstance) expect(count).toBeGreaterThan(0);
    for (const answer of answers.filter((answer) => answer.status === 503)) {
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(answer.headers.get('retry-after')).toBeTruthy();
    }

    // Full: waiting requests queue, in order, whichever instance takes them.
    const queued: ApiAnswer[] = [];
    for (let i = 0; i < 3; i++)
      queued.push(await api(gateways[i]!.url, 'gamer', 'POST', '/v1/sessions', { ...format, wait: true }));
    expect(queued.map((answer) => answer.status)).toEqual([202, 202, 202]);
    expect(queued.map((answer) => answer.body.position)).toEqual([1, 2, 3]);

    const store = await openGroupStore(cluster);
    try {
      const audit = await store.audit();
      expect(audit.liveSessions).toBe(capacity);
      expect(audit.queuedSessions).toBe(3);
      expect(audit.gpus).toHaveLength(nodeCount * gpusPerNode);
      for (const gpu of audit.gpus) {
        expect(gpu.committed, `${gpu.nodeId}#${gpu.index}`).toEqual(gpu.sumOfSessions);
        expect(gpu.sessions, `${gpu.nodeId}#${gpu.index}`).toBe(perGpu);
      }
      // The same, and no GPU over its headroom, as every instance's operator API reports it.
      for (const gateway of gateways) {
        const listed = await api(gateway.url, 'operator', 'GET', '/v1/nodes');
        expect(listed.status).toBe(200);
        let sessions = 0;
        for (const node of listed.body.nodes) {
          for (const gpu of node.gpus) {
            const audited = audit.gpus.find(
              (entry) => entry.nodeId === node.id && entry.index === gpu.index,
            )!;
            expect(gpu.committed).toEqual(audited.sumOfSessions);
            for (const dimension of ['gpu', 'encoder', 'vramMiB', 'encoderSessions'] as const) {
              expect(gpu.committed[dimension], `${node.id}#${gpu.index} ${dimension}`).toBeLessThanOrEqual(
                gpu.capacity[dimension] ?? Infinity,
              );
            }
            sessions += gpu.sessions;
          }
        }
        expect(sessions).toBe(capacity);
      }

      // Release 50 sessions, each DELETEd concurrently through two different instances: each ends
      // exactly once (one 200, one 410). The 3 queued sessions take 3 of the freed slots (queue first),
      // and a new burst over all instances gets exactly the other 47: nothing leaked, nothing doubled.
      const released = admitted.slice(0, 50).map((answer) => answer.body.sessionId as string);
      const deletes = await mapLimit(released, 16, async (id, index) =>
        Promise.all([
          api(gateways[index % 3]!.url, 'gamer', 'DELETE', `/v1/sessions/${id}`),
          api(gateways[(index + 1) % 3]!.url, 'gamer', 'DELETE', `/v1/sessions/${id}`),
        ]),
      );
      for (const pair of deletes) expect(pair.map((answer) => answer.status).sort()).toEqual([200, 410]);
      await eventually(
        async () => {
          for (const answer of queued) {
            const read = await api(gateways[0]!.url, 'gamer', 'GET', `/v1/sessions/${answer.body.sessionId}`);
            expect(read.body.state).toBe('assigned');
          }
        },
        { timeoutMs: 5_000, what: 'queued sessions assigned' },
      );
      const burst = await mapLimit(
        Array.from({ length: 300 }, (_, index) => index),
        inFlight,
        (index) => api(gateways[index % 3]!.url, 'gamer', 'POST', '/v1/sessions', { ...format, wait: false }),
      );
      expect(burst.filter((answer) => answer.status === 201)).toHaveLength(47);
      expect(
        burst.filter((answer) => answer.status === 503 && answer.body.code === 'VCA_ERR_NO_CAPACITY'),
      ).toHaveLength(253);
      const after = await store.audit();
      expect(after.liveSessions).toBe(capacity);
      expect(after.queuedSessions).toBe(0);
      for (const gpu of after.gpus) {
        expect(gpu.committed, `${gpu.nodeId}#${gpu.index}`).toEqual(gpu.sumOfSessions);
        expect(gpu.sessions).toBe(perGpu);
      }
    } finally {
      await store.close();
    }
    for (const gateway of gateways) {
      expect(gateway.alive()).toBe(true);
      expect(gateway.bugs(), gateway.name).toEqual([]);
    }
  }, 60_000);
});
