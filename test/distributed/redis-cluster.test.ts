/**
 * Gateway processes on Redis Cluster, configured the way operators do it (VCA_REDIS_MODE=cluster with
 * seed nodes): they share nodes and sessions, and a queued gamer on one instance is promoted when the
 * other frees capacity. (The relay itself, on Cluster pub/sub, is tested in
 * test/store/redis-topologies.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayCredentials, reportIdle, stopAllGatewayProcesses } from '../../kit/gateway-process.js';
import { type RedisClusterSetup, startRedisCluster } from '../../kit/redis-cluster.js';
import { PlayClient } from '../support/gateway.js';
import {
  api,
  defineGatewayGroup,
  type GatewayGroup,
  registerNode,
  startGroupGateway,
} from '../support/gateway-group.js';

/** 0.4 of an L4 (two per L4 under the 0.9 GPU headroom). */
const halfL4 = { game: 'unigine-heaven', resolution: '1080p', fps: 60 } as const;

let redisCluster: RedisClusterSetup;
let cluster: GatewayGroup;

beforeAll(async () => {
  redisCluster = await startRedisCluster();
  cluster = defineGatewayGroup(
    undefined,
    {},
    {
      VCA_REDIS_MODE: 'cluster',
      VCA_REDIS_CLUSTER_NODES: redisCluster.nodes.map(({ host, port }) => `${host}:${port}`).join(','),
    },
  );
}, 30_000);

afterAll(async () => {
  await stopAllGatewayProcesses();
  cluster?.dispose();
  await redisCluster?.stop();
});

describe('distributed: gateway processes on Redis Cluster', () => {
  it('share nodes and sessions, and a gamer queued on one is promoted when the other frees capacity', async () => {
    const [a, b] = await Promise.all([startGroupGateway(cluster, 'A'), startGroupGateway(cluster, 'B')]);
    for (const gateway of [a, b])
      expect((await api(gateway.url, 'operator', 'GET', '/readyz')).status).toBe(200);

    const node = await registerNode(a.url, 'render-1', 'L4', 1);
    await reportIdle(b.url, node);
    const held = [];
    for (const gateway of [a, b]) {
      const answer = await api(gateway.url, 'gamer', 'POST', '/v1/sessions', { ...halfL4, wait: false });
      expect(answer.status).toBe(201);
      held.push(answer.body.sessionId as string);
    }

    // The GPU is full: a WebSocket gamer on A waits in the queue.
    const gamer = await PlayClient.connect(a.wsUrl, gatewayCredentials.gamerToken);
    try {
      gamer.send({ type: 'request', ...halfL4, wait: true });
      expect(await gamer.next('queued', 5_000)).toMatchObject({ position: 1 });
      // B frees a slot and runs a queue pass at once; whichever instance places the gamer, A's socket
      // hears it (through the relay when it is B).
      expect((await api(b.url, 'gamer', 'DELETE', `/v1/sessions/${held[0]}`)).status).toBe(200);
      const assigned = await gamer.next('assigned', 10_000);
      expect(assigned.node.id).toBe('render-1');
      const read = await api(b.url, 'gamer', 'GET', `/v1/sessions/${assigned.sessionId}`);
      expect(read.body.state).toBe('assigned');
    } finally {
      await gamer.close();
    }
    for (const gateway of [a, b]) {
      expect(gateway.alive()).toBe(true);
      expect(gateway.bugs(), gateway.name).toEqual([]);
    }
  }, 45_000);
});
