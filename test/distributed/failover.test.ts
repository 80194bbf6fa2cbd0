/**
 * Distributed mode, failover: a gateway process killed with SIGKILL while it holds gamers' WebSockets
 * loses no session. Its gamers resume on the surviving instances (same session, same node, same GPU);
 * the sessions nobody resumes end once, by a survivor, after the resume grace; the ledger balances
 * throughout. Session events cross instances over the Redis relay: a gamer queued on one instance
 * hears of the capacity another instance freed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayProcess,
  gatewayCredentials,
  reportIdle,
  stopAllGatewayProcesses,
} from '../../kit/gateway-process.js';
import { eventually } from '../../kit/polling.js';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import type { RedisStore } from '../../src/store/redis/index.js';
import { PlayClient } from '../support/gateway.js';
import {
  api,
  defineGatewayGroup,
  type GatewayGroup,
  mapLimit,
  openGroupStore,
  registerNode,
  startGroupGateway,
} from '../support/gateway-group.js';

/** 0.4 of an L4: two per L4 under the 0.9 GPU headroom. */
const halfL4 = { game: 'unigine-heaven', resolution: '1080p', fps: 60 } as const;
const nodeCount = 5;
const gpusPerNode = 2;
const capacity = nodeCount * gpusPerNode * 2;
const resumeGraceSeconds = 3;

let redis: RedisServer;
let cluster: GatewayGroup;
let store: RedisStore;
let a: GatewayProcess;
let b: GatewayProcess;
let c: GatewayProcess;
const clients: PlayClient[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  cluster = defineGatewayGroup(redis.url, { leases: { resumeGraceSeconds, restSeconds: 600 } });
  [a, b, c] = await Promise.all([
    startGroupGateway(cluster, 'A'),
    startGroupGateway(cluster, 'B'),
    startGroupGateway(cluster, 'C'),
  ]);
  store = await openGroupStore(cluster);
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.socket.terminate();
  await store?.close();
  await stopAllGatewayProcesses();
  cluster?.dispose();
  await redis?.stop();
});

async function connect(gateway: GatewayProcess): Promise<PlayClient> {
  const client = await PlayClient.connect(gateway.wsUrl, gatewayCredentials.gamerToken);
  clients.push(client);
  return client;
}

interface Held {
  client: PlayClient;
  sessionId: string;
  resumeToken: string;
  nodeId: string;
  gpu: number;
}

async function holdSession(gateway: GatewayProcess): Promise<Held> {
  const client = await connect(gateway);
  client.send({ type: 'request', ...halfL4 });
  const assigned = await client.next('assigned', 5_000);
  expect(assigned.resumeToken).toEqual(expect.any(String));
  return {
    client,
    sessionId: assigned.sessionId,
    resumeToken: assigned.resumeToken,
    nodeId: assigned.node.id,
    gpu: assigned.gpu,
  };
}

async function expectLedgerBalanced(): Promise<{ live: number; queued: number }> {
  const audit = await store.audit();
  for (const gpu of audit.gpus)
    expect(gpu.committed, `${gpu.nodeId}#${gpu.index}`).toEqual(gpu.sumOfSessions);
  return { live: audit.liveSessions, queued: audit.queuedSessions };
}

/** `vca_sessions_ended_total{reason=...}` as one instance counts the ends it decided. */
async function endedCount(gateway: GatewayProcess, reason: string): Promise<number> {
  const answer = await api(gateway.url, 'operator', 'GET', '/metrics');
  expect(answer.status).toBe(200);
  const line = String(answer.body)
    .split('\n')
    .find((text) => text.startsWith(`vca_sessions_ended_total{reason="${reason}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('distributed: failover between gateway processes', () => {
  it("session events cross instances: a gamer queued on B is assigned when A's gamer ends; a DELETE via C reaches the socket on B", async () => {
    const nodes = [];
    for (let i = 0; i < nodeCount; i++) {
      const node = await registerNode([a, b, c][i % 3]!.url, `render-${i}`, 'L4', gpusPerNode);
      await reportIdle([b, c, a][i % 3]!.url, node);
      nodes.push(node);
    }
    // Fill the cluster: one slot from a gamer on A, the rest by REST via C.
    const onA = await holdSession(a);
    const fill = await mapLimit(Array.from({ length: capacity - 1 }), 8, () =>
      api(c.url, 'gamer', 'POST', '/v1/sessions', { ...halfL4, wait: false }),
    );
    expect(fill.map((answer) => answer.status)).toEqual(Array(capacity - 1).fill(201));

    const waiting = await connect(b);
    waiting.send({ type: 'request', ...halfL4 });
    const queued = await waiting.next('queued', 5_000);
    expect(queued.position).toBe(1);

    // A decides (its gamer's end frees a slot and A's queue pass places B's gamer); B's socket hears it.
    const endSentAt = Date.now();
    onA.client.send({ type: 'end' });
    expect(await onA.client.next('ended', 5_000)).toMatchObject({
      sessionId: onA.sessionId,
      reason: 'released',
    });
    const assigned = await waiting.next('assigned', 5_000);
    const relayMs = Date.now() - endSentAt;
    expect(assigned.sessionId).toBe(queued.sessionId);
    expect(assigned.node.id).toMatch(/^render-/);
    expect(assigned.ticket).toEqual(expect.any(String));

    // C ends B's gamer's session over REST: the socket on B is told.
    const deleted = await api(c.url, 'gamer', 'DELETE', `/v1/sessions/${queued.sessionId}`);
    expect(deleted.status).toBe(200);
    expect(await waiting.next('ended', 5_000)).toMatchObject({
      sessionId: queued.sessionId,
      reason: 'released',
    });
    console.info(`distributed relay: queued gamer on B assigned ${relayMs} ms after A's gamer sent "end"`);

    // Release the REST sessions: the next test starts from an empty, balanced cluster.
    const releases = await mapLimit(fill, 8, (answer) =>
      api(b.url, 'gamer', 'DELETE', `/v1/sessions/${answer.body.sessionId}`),
    );
    expect(releases.map((answer) => answer.status)).toEqual(Array(capacity - 1).fill(200));
    expect(await expectLedgerBalanced()).toEqual({ live: 0, queued: 0 });
  }, 40_000);

  it('kill -9 of A under load: its gamers resume on B and C with the same session on the same GPU; the unresumed end once after the grace; no capacity leaks', async () => {
    // 12 gamers on A, 2 on B, 2 REST sessions via C: 16 of 20 slots.
    const onA = await Promise.all(Array.from({ length: 12 }, () => holdSession(a)));
    const onB = await Promise.all(Array.from({ length: 2 }, () => holdSession(b)));
    const rest = [];
    for (let i = 0; i < 2; i++)
      rest.push(await api(c.url, 'gamer', 'POST', '/v1/sessions', { ...halfL4, wait: false }));
    expect(rest.map((answer) => answer.status)).toEqual([201, 201]);
    const before = await expectLedgerBalanced();
    expect(before).toEqual({ live: 16, queued: 0 });
    const endedBefore = (await endedCount(b, 'lease-expired')) + (await endedCount(c, 'lease-expired'));

    // Load on the survivors while A dies: allocate and release the free slots over and over.
    let loading = true;
    const loadOutcomes = new Map<string, number>();
    const load = Promise.all(
      [b, c, b, c].map(async (gateway) => {
        while (loading) {
          const answer = await api(gateway.url, 'gamer', 'POST', '/v1/sessions', { ...halfL4, wait: false });
          const key = answer.status === 201 ? '201' : `${answer.status} ${answer.body?.code}`;
          loadOutcomes.set(key, (loadOutcomes.get(key) ?? 0) + 1);
          if (answer.status === 201) {
            const released = await api(
              gateway === b ? c.url : b.url,
              'gamer',
              'DELETE',
              `/v1/sessions/${answer.body.sessionId}`,
            );
            expect(released.status).toBe(200);
          } else {
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        }
      }),
    );

    await new Promise((resolve) => setTimeout(resolve, 200));
    const closed = onA.map(
      (held) => new Promise<void>((resolve) => held.client.socket.once('close', () => resolve())),
    );
    const killedAt = Date.now();
    process.kill(a.pid, 'SIGKILL');
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await Promise.all(closed);

    // 8 of A's gamers come back, alternately on B and C; 4 never do.
    const resumers = onA.slice(0, 8);
    const quitters = onA.slice(8);
    const resumed = await Promise.all(
      resumers.map(async (held, index) => {
        const client = await connect(index % 2 === 0 ? b : c);
        client.send({ type: 'resume', sessionId: held.sessionId, resumeToken: held.resumeToken });
        const message = await client.next('assigned', 5_000);
        return { held, client, message };
      }),
    );
    const resumedWithinMs = Date.now() - killedAt;
    for (const { held, message } of resumed) {
      expect(message).toMatchObject({
        sessionId: held.sessionId,
        state: 'assigned',
        node: { id: held.nodeId },
        gpu: held.gpu,
      });
      expect(message.ticket).toEqual(expect.any(String));
    }

    loading = false;
    await load;
    expect(loadOutcomes.get('201') ?? 0).toBeGreaterThan(0);
    for (const key of loadOutcomes.keys()) expect(['201', '503 VCA_ERR_NO_CAPACITY']).toContain(key);

    // Nothing lost, nothing doubled: all 16 sessions live, each where it was.
    expect(await expectLedgerBalanced()).toEqual({ live: 16, queued: 0 });
    for (const held of [...onA, ...onB]) {
      const read = await api(b.url, 'gamer', 'GET', `/v1/sessions/${held.sessionId}`);
      expect(read.body).toMatchObject({ state: 'assigned', node: { id: held.nodeId }, gpu: held.gpu });
    }

    // After the grace, a survivor ends each unresumed session exactly once.
    await eventually(
      async () => {
        for (const held of quitters) {
          const read = await api(c.url, 'gamer', 'GET', `/v1/sessions/${held.sessionId}`);
          expect(read.body).toMatchObject({ state: 'ended', endReason: 'lease-expired' });
        }
      },
      { timeoutMs: (resumeGraceSeconds + 5) * 1000, intervalMs: 100, what: 'unresumed sessions ended' },
    );
    const expiredAfterMs = Date.now() - killedAt;
    // Another grace later: the resumed ones (their leases now renewed by B and C) are still live.
    await new Promise((resolve) => setTimeout(resolve, (resumeGraceSeconds + 1) * 1000));
    expect(await expectLedgerBalanced()).toEqual({ live: 12, queued: 0 });
    for (const { held } of resumed) {
      const read = await api(b.url, 'gamer', 'GET', `/v1/sessions/${held.sessionId}`);
      expect(read.body.state).toBe('assigned');
    }
    for (const held of onB) {
      const read = await api(c.url, 'gamer', 'GET', `/v1/sessions/${held.sessionId}`);
      expect(read.body.state).toBe('assigned');
    }
    const endedAfter = (await endedCount(b, 'lease-expired')) + (await endedCount(c, 'lease-expired'));
    expect(endedAfter - endedBefore).toBe(quitters.length);

    // No capacity leaked: exactly the 8 free slots are admitted, over both survivors.
    const burst = await mapLimit(
      Array.from({ length: 40 }, (_, index) => index),
      16,
      (index) => api([b, c][index % 2]!.url, 'gamer', 'POST', '/v1/sessions', { ...halfL4, wait: false }),
    );
    expect(burst.filter((answer) => answer.status === 201)).toHaveLength(capacity - 12);
    expect(await expectLedgerBalanced()).toEqual({ live: capacity, queued: 0 });
    expect(b.alive() && c.alive()).toBe(true);
    for (const gateway of [a, b, c]) expect(gateway.bugs(), gateway.name).toEqual([]);
    console.info(
      `distributed failover: ${resumed.length} resumed within ${resumedWithinMs} ms of SIGKILL; ${quitters.length} unresumed ended ${expiredAfterMs} ms after it; load during the kill: ${JSON.stringify(Object.fromEntries(loadOutcomes))}`,
    );
  }, 40_000);
});
