/**
 * Distributed mode: several real gateway processes on one real Redis behave as one gateway. A node
 * registered through one instance and reporting to another takes sessions requested through a third,
 * and every instance reports the same committed load.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayProcess,
  gatewayCredentials,
  reportIdle,
  stopAllGatewayProcesses,
} from '../../kit/gateway-process.js';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { PlayClient } from '../support/gateway.js';
import {
  api,
  defineGatewayGroup,
  type GatewayGroup,
  openGroupStore,
  registerNode,
  startGroupGateway,
} from '../support/gateway-group.js';

/** 0.4 of an L4 (two per L4 under the 0.9 GPU headroom). */
const halfL4 = { game: 'unigine-heaven', resolution: '1080p', fps: 60, wait: false } as const;

let redis: RedisServer;
let cluster: GatewayGroup;
let a: GatewayProcess;
let b: GatewayProcess;
let c: GatewayProcess;

beforeAll(async () => {
  redis = await startRedisServer();
  cluster = defineGatewayGroup(redis.url);
});

afterAll(async () => {
  await stopAllGatewayProcesses();
  cluster?.dispose();
  await redis?.stop();
});

async function nodesSeenBy(gateway: GatewayProcess) {
  const answer = await api(gateway.url, 'operator', 'GET', '/v1/nodes');
  expect(answer.status).toBe(200);
  return answer.body.nodes as any[];
}

describe('distributed: several gateway processes share one Redis', () => {
  it('a node registered via A, reporting to B, takes sessions requested via B and then via a third instance C; every instance shows the same committed load', async () => {
    [a, b] = await Promise.all([startGroupGateway(cluster, 'A'), startGroupGateway(cluster, 'B')]);
    expect(a.port).not.toBe(b.port);

    const node = await registerNode(a.url, 'render-1', 'L4', 2);
    // Registered but silent: no instance places on it yet (placement requires telemetry).
    const early = await api(b.url, 'gamer', 'POST', '/v1/sessions', halfL4);
    expect({ status: early.status, code: early.body.code }).toEqual({
      status: 503,
      code: 'VCA_ERR_NO_CAPACITY',
    });
    await reportIdle(b.url, node);

    const viaB = await api(b.url, 'gamer', 'POST', '/v1/sessions', halfL4);
    expect(viaB.status).toBe(201);
    expect(viaB.body.node.id).toBe('render-1');

    // Two instances agree.
    const [seenA, seenB] = await Promise.all([nodesSeenBy(a), nodesSeenBy(b)]);
    expect(seenA).toHaveLength(1);
    expect(seenA[0].gpus.map((gpu: any) => gpu.committed)).toEqual(
      seenB[0].gpus.map((gpu: any) => gpu.committed),
    );

    // A third instance joins the running cluster and sees (and places on) the same node.
    c = await startGroupGateway(cluster, 'C');
    const viaC = [];
    for (let i = 0; i < 3; i++) viaC.push(await api(c.url, 'gamer', 'POST', '/v1/sessions', halfL4));
    expect(viaC.map((answer) => answer.status)).toEqual([201, 201, 201]);
    expect(viaC.map((answer) => answer.body.node.id)).toEqual(['render-1', 'render-1', 'render-1']);
    // 2 GPUs x 2 sessions: the fifth is refused whichever instance asks.
    for (const gateway of [a, b, c]) {
      const full = await api(gateway.url, 'gamer', 'POST', '/v1/sessions', halfL4);
      expect({ status: full.status, code: full.body.code }).toEqual({
        status: 503,
        code: 'VCA_ERR_NO_CAPACITY',
      });
    }

    const views = await Promise.all([a, b, c].map(nodesSeenBy));
    const first = views[0]!;
    const committed = views.map((nodes) =>
      nodes[0].gpus.map((gpu: any) => ({ committed: gpu.committed, sessions: gpu.sessions })),
    );
    expect(committed[1]).toEqual(committed[0]);
    expect(committed[2]).toEqual(committed[0]);
    expect(first[0].gpus.map((gpu: any) => gpu.sessions)).toEqual([2, 2]);
    expect(first[0].gpus[0].committed.gpu).toBe(2 * 400_000);

    // A session created via B reads the same from C, and ended via C frees capacity seen by A.
    const read = await api(c.url, 'gamer', 'GET', `/v1/sessions/${viaB.body.sessionId}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      sessionId: viaB.body.sessionId,
      state: 'assigned',
      node: { id: 'render-1' },
    });
    const ended = await api(c.url, 'gamer', 'DELETE', `/v1/sessions/${viaB.body.sessionId}`);
    expect(ended.status).toBeLessThan(300);
    const again = await api(a.url, 'gamer', 'POST', '/v1/sessions', halfL4);
    expect(again.status).toBe(201);

    const store = await openGroupStore(cluster);
    try {
      const audit = await store.audit();
      expect(audit.liveSessions).toBe(4);
      for (const gpu of audit.gpus)
        expect(gpu.committed, `${gpu.nodeId}#${gpu.index}`).toEqual(gpu.sumOfSessions);
    } finally {
      await store.close();
    }
    for (const gateway of [a, b, c]) {
      expect(gateway.alive()).toBe(true);
      expect(gateway.bugs(), gateway.name).toEqual([]);
    }
  }, 45_000);

  it('a rolling restart: SIGTERM to C tells its gamer "shutdown", C exits 0, and the gamer resumes the same session on A while B keeps serving', async () => {
    // Free one slot and hold it over a socket on C.
    const listed = await api(b.url, 'operator', 'GET', '/v1/nodes/render-1');
    const freed = await api(b.url, 'gamer', 'DELETE', `/v1/sessions/${listed.body.sessionIds[0]}`);
    expect(freed.status).toBe(200);
    const gamer = await PlayClient.connect(c.wsUrl, gatewayCredentials.gamerToken);
    try {
      gamer.send({ type: 'request', ...halfL4, wait: true });
      const held = await gamer.next('assigned', 5_000);
      const closed = new Promise<number>((resolve) => gamer.socket.once('close', (code) => resolve(code)));

      c.kill('SIGTERM');
      expect(await gamer.next('shutdown', 5_000)).toEqual({ type: 'shutdown' });
      expect(await closed).toBe(1001);
      expect(await c.exited).toEqual({ code: 0, signal: null });
      expect(c.output.some((line) => line.includes('"msg":"gateway stopped"'))).toBe(true);

      const back = await PlayClient.connect(a.wsUrl, gatewayCredentials.gamerToken);
      try {
        back.send({ type: 'resume', sessionId: held.sessionId, resumeToken: held.resumeToken });
        expect(await back.next('assigned', 5_000)).toMatchObject({
          sessionId: held.sessionId,
          node: { id: 'render-1' },
          gpu: held.gpu,
        });
      } finally {
        await back.close();
      }
      const still = await api(b.url, 'gamer', 'GET', `/v1/sessions/${held.sessionId}`);
      expect(still.body.state).toBe('assigned');
      for (const gateway of [a, b]) {
        expect(gateway.alive()).toBe(true);
        expect(gateway.bugs(), gateway.name).toEqual([]);
      }
    } finally {
      gamer.socket.terminate();
    }
  }, 30_000);

  it('a resume on another instance closes the connection that still holds the session (4001), so only one socket keeps its lease', async () => {
    // Free one slot for the WebSocket session of this test.
    const listed = await api(b.url, 'operator', 'GET', '/v1/nodes/render-1');
    expect((await api(b.url, 'gamer', 'DELETE', `/v1/sessions/${listed.body.sessionIds[0]}`)).status).toBe(
      200,
    );
    const first = await PlayClient.connect(a.wsUrl, gatewayCredentials.gamerToken);
    const second = await PlayClient.connect(b.wsUrl, gatewayCredentials.gamerToken);
    try {
      first.send({ type: 'request', ...halfL4, wait: true });
      const held = await first.next('assigned', 5_000);
      const closed = new Promise<number>((resolve) => first.socket.once('close', (code) => resolve(code)));
      second.send({ type: 'resume', sessionId: held.sessionId, resumeToken: held.resumeToken });
      expect(await second.next('assigned', 5_000)).toMatchObject({
        sessionId: held.sessionId,
        gpu: held.gpu,
      });
      expect(await closed).toBe(4001);
      // The session lives on through the second connection: ending it there frees it once.
      second.send({ type: 'end' });
      expect(await second.next('ended', 5_000)).toMatchObject({
        sessionId: held.sessionId,
        reason: 'released',
      });
      for (const gateway of [a, b]) expect(gateway.bugs(), gateway.name).toEqual([]);
    } finally {
      first.socket.terminate();
      await second.close();
    }
  }, 30_000);
});
