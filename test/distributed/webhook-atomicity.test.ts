/**
 * Distributed mode: a webhook's effect is one store step on the shared Redis, checked whole before
 * anything changes, whichever gateway process receives it. A refused scale-down drains nothing on any
 * instance and is not remembered, so its corrected retry applies through another instance; two
 * scale-downs by count through two instances at once never pick the same victim.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayProcess,
  gatewayCredentials,
  reportIdle,
  stopAllGatewayProcesses,
} from '../../kit/gateway-process.js';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { signBody } from '../../src/http/credentials.js';
import {
  api,
  defineGatewayGroup,
  type GatewayGroup,
  openGroupStore,
  registerNode,
  startGroupGateway,
} from '../support/gateway-group.js';

let redis: RedisServer;
let cluster: GatewayGroup;
let a: GatewayProcess;
let b: GatewayProcess;

beforeAll(async () => {
  redis = await startRedisServer();
  cluster = defineGatewayGroup(redis.url);
  [a, b] = await Promise.all([startGroupGateway(cluster, 'A'), startGroupGateway(cluster, 'B')]);
}, 60_000);

afterAll(async () => {
  await stopAllGatewayProcesses();
  cluster?.dispose();
  await redis?.stop();
});

/** POSTs a signed contextualize body to one gateway, as the orchestrator does. */
function contextualize(gateway: GatewayProcess, body: unknown) {
  const raw = JSON.stringify(body);
  const t = Math.floor(Date.now() / 1000);
  return api(gateway.url, 'none', 'POST', '/v1/hooks/contextualize', raw, {
    'content-type': 'application/json',
    'x-vca-signature': `t=${t},v1=${signBody(gatewayCredentials.orchestratorSecret, t, raw)}`,
  });
}

async function statesSeenBy(gateway: GatewayProcess): Promise<Record<string, string>> {
  const answer = await api(gateway.url, 'operator', 'GET', '/v1/nodes');
  expect(answer.status).toBe(200);
  return Object.fromEntries(answer.body.nodes.map((node: any) => [node.id, node.state]));
}

async function readyNodes(gateway: GatewayProcess, ids: readonly string[]): Promise<void> {
  for (const id of ids) await reportIdle(gateway.url, await registerNode(gateway.url, id));
}

describe('distributed: webhook effects are all or nothing on the shared store', () => {
  it('a scale-down naming a ready node and ghost-node, sent to B, drains nothing anywhere; the corrected retry under the same eventId applies through A', async () => {
    await readyNodes(a, ['ready-1', 'ready-2']);
    const refused = await contextualize(b, {
      eventId: 'e1',
      event: 'scale-down',
      group: 'g',
      nodes: ['ready-1', 'ghost-node'],
    });
    expect(refused.status, JSON.stringify(refused.body)).toBe(404);
    expect(refused.body).toMatchObject({
      code: 'VCA_ERR_NODE_NOT_FOUND',
      field: 'nodes.1',
      eventId: 'contextualize:e1',
      replayed: false,
    });
    for (const gateway of [a, b]) {
      expect(await statesSeenBy(gateway)).toEqual({ 'ready-1': 'ready', 'ready-2': 'ready' });
    }
    const store = await openGroupStore(cluster);
    try {
      expect(await store.outboxLength()).toBe(0);
    } finally {
      await store.close();
    }

    const corrected = await contextualize(a, {
      eventId: 'e1',
      event: 'scale-down',
      group: 'g',
      nodes: ['ready-1'],
    });
    expect(corrected.status, JSON.stringify(corrected.body)).toBe(200);
    expect(corrected.body).toMatchObject({
      replayed: false,
      draining: [{ id: 'ready-1', state: 'drained' }],
    });
    // Empty, so drained and removed at once; both instances agree.
    for (const gateway of [a, b]) expect(await statesSeenBy(gateway)).toEqual({ 'ready-2': 'ready' });
    const replay = await contextualize(b, {
      eventId: 'e1',
      event: 'scale-down',
      group: 'g',
      nodes: ['ready-1'],
    });
    expect(replay.body).toMatchObject({ replayed: true, draining: [{ id: 'ready-1', state: 'drained' }] });
  }, 30_000);

  it('two scale-downs by count through A and B at once drain two different nodes', async () => {
    await readyNodes(b, ['count-1', 'count-2', 'count-3']);
    const before = await statesSeenBy(a);
    expect(Object.values(before).filter((state) => state === 'ready')).toHaveLength(4);
    const down = (gateway: GatewayProcess, eventId: string) =>
      // A count drain stays inside the group it names: the kit registers every node in `kit`.
      contextualize(gateway, { eventId, event: 'scale-down', group: 'kit', count: 1 });
    const answers = await Promise.all([down(a, 'down-a'), down(b, 'down-b')]);
    for (const answer of answers) expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const victims = answers.flatMap((answer) => answer.body.draining.map((node: any) => node.id));
    expect(victims).toHaveLength(2);
    expect(new Set(victims).size).toBe(2);
    const after = await statesSeenBy(b);
    expect(Object.keys(after).sort()).toEqual(
      Object.keys(before)
        .filter((id) => !victims.includes(id))
        .sort(),
    );
    for (const gateway of [a, b]) {
      expect(gateway.alive()).toBe(true);
      expect(gateway.bugs(), gateway.name).toEqual([]);
    }
  }, 30_000);
});
