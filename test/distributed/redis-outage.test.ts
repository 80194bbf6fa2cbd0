/**
 * Distributed mode, store outage: redis-server stopped under load and started again (empty: the test
 * server keeps nothing). While it is down every gateway process stays up, answers a clean, prompt 503
 * problem+json (VCA_ERR_STORE_UNAVAILABLE) to work that needs the store and 503 to /readyz; once it is
 * back, /readyz turns 200 by itself and, with the node registered and reporting again (as the
 * orchestrator and the node's probe do), allocations succeed without restarting any gateway.
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
import { PlayClient } from '../support/gateway.js';
import {
  type ApiAnswer,
  api,
  defineGatewayGroup,
  type GatewayGroup,
  openGroupStore,
  registerNode,
  startGroupGateway,
} from '../support/gateway-group.js';

const halfL4 = { game: 'unigine-heaven', resolution: '1080p', fps: 60 } as const;
/** A clean refusal must come well before a client would give up: no waiting on a dead connection. */
const promptMs = 3_000;

let redis: RedisServer;
let cluster: GatewayGroup;
let gateways: GatewayProcess[] = [];
const sockets: PlayClient[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  cluster = defineGatewayGroup(redis.url);
  gateways = await Promise.all(['A', 'B'].map((name) => startGroupGateway(cluster, name)));
}, 60_000);

afterAll(async () => {
  for (const socket of sockets) socket.socket.terminate();
  await stopAllGatewayProcesses();
  cluster?.dispose();
  await redis?.stop();
});

interface Timed {
  what: string;
  status: number;
  code: string | undefined;
  contentType: string | null;
  ms: number;
}

async function timed(what: string, call: () => Promise<ApiAnswer>): Promise<Timed> {
  const started = Date.now();
  const answer = await call();
  return {
    what,
    status: answer.status,
    code: answer.body?.code,
    contentType: answer.headers.get('content-type'),
    ms: Date.now() - started,
  };
}

describe('distributed: Redis stopped and restarted under load', () => {
  it('during the outage: prompt 503 VCA_ERR_STORE_UNAVAILABLE, /readyz 503, processes up; after the restart: ready again by itself and allocating once the node re-registers', async () => {
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    const node = await registerNode(a.url, 'render-1', 'L4', 4);
    await reportIdle(b.url, node);

    // Load: allocate through both instances and release through the other, the whole time.
    let loading = true;
    const loadAnswers: Timed[] = [];
    const releaseAnswers: Timed[] = [];
    const load = Promise.all(
      [a, b, a, b].map(async (gateway, worker) => {
        const other = gateway === a ? b : a;
        while (loading) {
          let sessionId: string | undefined;
          const created = await timed('POST', async () => {
            const answer = await api(gateway.url, 'gamer', 'POST', '/v1/sessions', {
              ...halfL4,
              wait: false,
            });
            sessionId = answer.body?.sessionId;
            return answer;
          });
          loadAnswers.push(created);
          if (created.status === 201) {
            releaseAnswers.push(
              await timed('DELETE', () => api(other.url, 'gamer', 'DELETE', `/v1/sessions/${sessionId}`)),
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 10 + worker));
        }
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(loadAnswers.some((answer) => answer.status === 201)).toBe(true);

    const stoppedAt = Date.now();
    await redis.stop();
    const outage: Timed[] = [];
    for (let round = 0; round < 3; round++) {
      for (const gateway of [a, b]) {
        outage.push(
          await timed(`${gateway.name} POST /v1/sessions`, () =>
            api(gateway.url, 'gamer', 'POST', '/v1/sessions', { ...halfL4, wait: false }, {}, promptMs * 2),
          ),
        );
        outage.push(
          await timed(`${gateway.name} POST /v1/sessions (wait)`, () =>
            api(gateway.url, 'gamer', 'POST', '/v1/sessions', { ...halfL4, wait: true }, {}, promptMs * 2),
          ),
        );
        outage.push(
          await timed(`${gateway.name} GET /v1/nodes`, () =>
            api(gateway.url, 'operator', 'GET', '/v1/nodes', undefined, {}, promptMs * 2),
          ),
        );
        const ready = await timed(`${gateway.name} /readyz`, () =>
          api(gateway.url, 'none', 'GET', '/readyz', undefined, {}, promptMs * 2),
        );
        expect(ready.status, ready.what).toBe(503);
        expect(ready.ms, ready.what).toBeLessThan(promptMs);
        const health = await api(gateway.url, 'none', 'GET', '/healthz');
        expect(health.status).toBe(200);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    for (const answer of outage) {
      expect({ what: answer.what, status: answer.status, code: answer.code }).toEqual({
        what: answer.what,
        status: 503,
        code: 'VCA_ERR_STORE_UNAVAILABLE',
      });
      expect(answer.contentType, answer.what).toMatch(/^application\/problem\+json/);
      expect(answer.ms, answer.what).toBeLessThan(promptMs);
    }
    const outageMs = Date.now() - stoppedAt;
    expect(a.alive() && b.alive()).toBe(true);

    // Redis is back, empty. Readiness returns by itself.
    await redis.restart();
    const restartedAt = Date.now();
    await eventually(
      async () => {
        for (const gateway of [a, b])
          expect((await api(gateway.url, 'none', 'GET', '/readyz')).status).toBe(200);
      },
      { timeoutMs: 10_000, intervalMs: 50, what: '/readyz 200 after the restart' },
    );
    const readyAfterMs = Date.now() - restartedAt;

    // The store forgot the node: nothing can be placed until the orchestrator and the probe report it again.
    const empty = await api(a.url, 'gamer', 'POST', '/v1/sessions', { ...halfL4, wait: false });
    expect({ status: empty.status, code: empty.body.code }).toEqual({
      status: 503,
      code: 'VCA_ERR_NO_CAPACITY',
    });
    const again = await registerNode(b.url, 'render-1', 'L4', 4);
    await reportIdle(a.url, again);
    await eventually(
      async () => {
        const recent = loadAnswers.slice(-8);
        expect(recent.length).toBe(8);
        expect(recent.every((answer) => answer.status === 201 || answer.code === 'VCA_ERR_NO_CAPACITY')).toBe(
          true,
        );
        expect(recent.some((answer) => answer.status === 201)).toBe(true);
      },
      { timeoutMs: 5_000, what: 'load allocating again' },
    );
    loading = false;
    await load;

    // Every answer under load was one of the clean ones, each in time; never a 500.
    const kinds = new Map<string, number>();
    for (const answer of loadAnswers) {
      const key = answer.status === 201 ? '201' : `${answer.status} ${answer.code}`;
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
      expect(answer.ms).toBeLessThan(promptMs);
    }
    for (const key of kinds.keys()) {
      expect(['201', '503 VCA_ERR_NO_CAPACITY', '503 VCA_ERR_STORE_UNAVAILABLE']).toContain(key);
    }
    expect(kinds.get('503 VCA_ERR_STORE_UNAVAILABLE') ?? 0).toBeGreaterThan(0);

    // Releases during the outage failed cleanly too (their sessions went with the old Redis: 404 after).
    for (const answer of releaseAnswers) {
      expect(['200 undefined', '404 VCA_ERR_SESSION_NOT_FOUND', '503 VCA_ERR_STORE_UNAVAILABLE']).toContain(
        `${answer.status} ${answer.code}`,
      );
      expect(answer.ms).toBeLessThan(promptMs);
    }

    // Both instances allocate again, and the relay (re-subscribed by itself) carries events again: a
    // session held over A's socket, ended through B, reaches the socket on A.
    const viaB = await api(b.url, 'gamer', 'POST', '/v1/sessions', { ...halfL4, wait: false });
    expect(viaB.status).toBe(201);
    const socket = await PlayClient.connect(a.wsUrl, gatewayCredentials.gamerToken);
    sockets.push(socket);
    socket.send({ type: 'request', ...halfL4 });
    const held = await socket.next('assigned', 5_000);
    expect(held.node.id).toBe('render-1');
    const ended = await api(b.url, 'gamer', 'DELETE', `/v1/sessions/${held.sessionId}`);
    expect(ended.status).toBe(200);
    expect(await socket.next('ended', 5_000)).toMatchObject({
      sessionId: held.sessionId,
      reason: 'released',
    });

    const store = await openGroupStore(cluster);
    try {
      const audit = await store.audit();
      for (const gpu of audit.gpus)
        expect(gpu.committed, `${gpu.nodeId}#${gpu.index}`).toEqual(gpu.sumOfSessions);
      expect(audit.gpus).toHaveLength(4);
    } finally {
      await store.close();
    }
    expect(a.alive() && b.alive()).toBe(true);
    for (const gateway of [a, b]) expect(gateway.bugs(), gateway.name).toEqual([]);
    const storeDown = outage.map((answer) => answer.ms);
    console.info(
      `distributed outage: ${outageMs} ms down; ${outage.length} requests during it answered 503 STORE_UNAVAILABLE in ${Math.min(...storeDown)}-${Math.max(...storeDown)} ms; /readyz 200 again ${readyAfterMs} ms after the restart; load answers ${JSON.stringify(Object.fromEntries(kinds))}`,
    );
  }, 45_000);
});
