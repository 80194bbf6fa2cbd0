/**
 * Distributed mode: a node id outlives its registration. A node drained and removed through one
 * gateway and registered again on another host is announced with that host by every gateway, including
 * one that cached the old endpoint while placing a session there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayProcess,
  registerNodes,
  reportIdle,
  stopAllGatewayProcesses,
} from '../../kit/gateway-process.js';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { api, defineGatewayGroup, type GatewayGroup, startGroupGateway } from '../support/gateway-group.js';

const session = { game: 'unigine-heaven', resolution: '1080p', fps: 60, wait: false } as const;

let redis: RedisServer;
let cluster: GatewayGroup;

beforeAll(async () => {
  redis = await startRedisServer();
  cluster = defineGatewayGroup(redis.url);
});

afterAll(async () => {
  await stopAllGatewayProcesses();
  cluster?.dispose();
  await redis?.stop();
});

async function registerReady(gateway: GatewayProcess, id: string, host: string): Promise<void> {
  const [node] = await registerNodes(gateway.url, [{ id, model: 'L4', host }]);
  await reportIdle(gateway.url, node!);
}

describe('distributed: node endpoints across gateway instances', () => {
  it('a node removed via one gateway and registered again on another host is announced with the new host by a gateway that cached the old one', async () => {
    const [one, two] = await Promise.all([
      startGroupGateway(cluster, 'one'),
      startGroupGateway(cluster, 'two'),
    ]);

    await registerReady(one, 'render-x', 'render-a.internal');
    const first = await api(two.url, 'gamer', 'POST', '/v1/sessions', session);
    expect(first.status).toBe(201);
    // Gateway two has now cached render-x's endpoint.
    expect(first.body.node).toMatchObject({ id: 'render-x', host: 'render-a.internal' });
    expect((await api(two.url, 'gamer', 'DELETE', `/v1/sessions/${first.body.sessionId}`)).status).toBe(200);

    // Drained and removed through gateway one only: gateway two hears of it through the relay alone.
    const drained = await api(one.url, 'operator', 'POST', '/v1/nodes/render-x/drain');
    expect(drained.status).toBe(200);
    expect((await api(one.url, 'operator', 'GET', '/v1/nodes/render-x')).status).toBe(404);

    await registerReady(one, 'render-x', 'render-b.internal');
    const second = await api(two.url, 'gamer', 'POST', '/v1/sessions', session);
    expect(second.status).toBe(201);
    expect(second.body.node).toMatchObject({ id: 'render-x', host: 'render-b.internal' });
    const read = await api(two.url, 'gamer', 'GET', `/v1/sessions/${second.body.sessionId}`);
    expect(read.body.node).toMatchObject({ id: 'render-x', host: 'render-b.internal' });

    for (const gateway of [one, two]) {
      expect(gateway.alive()).toBe(true);
      expect(gateway.bugs(), gateway.name).toEqual([]);
    }
  }, 45_000);
});
