/**
 * Distributed mode, the drain-complete callback survives its gateway: the store writes it to the
 * outbox with the drain, gateway A claims it and dies by SIGKILL in the middle of the POST, and gateway
 * B, started afterwards on the same Redis, delivers it once A's claim has run out: exactly once from
 * B, with the Idempotency-Key A sent, and the outbox is empty afterwards.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAllGatewayProcesses } from '../../kit/gateway-process.js';
import { eventually, sleep } from '../../kit/polling.js';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import type { RedisStore } from '../../src/store/redis/index.js';
import {
  api,
  defineGatewayGroup,
  type GatewayGroup,
  openGroupStore,
  registerNode,
  startGroupGateway,
} from '../support/gateway-group.js';

/** A claim's lease is 2 x timeout + 1 s (CallbackOutbox): 3 s here. */
const callbackTimeoutSeconds = 1;
const leaseMs = 2 * callbackTimeoutSeconds * 1000 + 1000;

interface Callback {
  path: string;
  at: number;
  idempotencyKey: string;
  body: any;
}

let redis: RedisServer;
let cluster: GatewayGroup;
let store: RedisStore;
let receiver: http.Server;
let receiverUrl: string;
const callbacks: Callback[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  cluster = defineGatewayGroup(redis.url, { hooks: { callbackTimeoutSeconds } });
  store = await openGroupStore(cluster);
  // The orchestrator: /a never answers (A dies waiting), /b answers 200.
  receiver = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      callbacks.push({
        path: request.url ?? '',
        at: Date.now(),
        idempotencyKey: String(request.headers['idempotency-key'] ?? ''),
        body: JSON.parse(body),
      });
      if (request.url !== '/a') response.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await store?.close();
  await stopAllGatewayProcesses();
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  cluster?.dispose();
  await redis?.stop();
});

describe('distributed: drain-complete callback', () => {
  it('is delivered exactly once by gateway B after gateway A is killed in the middle of sending it', async () => {
    const a = await startGroupGateway(cluster, 'A', { VCA_DRAINED_CALLBACK_URL: `${receiverUrl}/a` });
    await registerNode(a.url, 'render-1');
    const drained = await api(a.url, 'operator', 'POST', '/v1/nodes/render-1/drain', {
      deadlineSeconds: 600,
    });
    expect(drained.body.state).toBe('drained');

    const fromA = await eventually(
      async () => {
        const seen = callbacks.find((callback) => callback.path === '/a');
        if (!seen) throw new Error('A has not sent the callback');
        return seen;
      },
      { timeoutMs: 10_000, what: "A's callback" },
    );
    process.kill(a.pid, 'SIGKILL');
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await store.outboxLength()).toBe(1);

    const b = await startGroupGateway(cluster, 'B', { VCA_DRAINED_CALLBACK_URL: `${receiverUrl}/b` });
    const fromB = await eventually(
      async () => {
        const seen = callbacks.find((callback) => callback.path === '/b');
        if (!seen) throw new Error('B has not sent the callback');
        return seen;
      },
      { timeoutMs: 15_000, what: "B's callback" },
    );
    // B got the entry only once A's claim ran out (A claimed it just before its POST).
    expect(fromB.at - fromA.at).toBeGreaterThanOrEqual(leaseMs - 500);
    expect(fromB.body).toEqual({
      event: 'node-drained',
      node: { id: 'render-1', host: '127.0.0.1', group: 'kit' },
    });
    expect(fromB.body).toEqual(fromA.body);
    expect(fromB.idempotencyKey).toMatch(/^node-drained:render-1:\d+$/);
    expect(fromB.idempotencyKey).toBe(fromA.idempotencyKey);

    await eventually(async () => expect(await store.outboxLength()).toBe(0), { what: 'an empty outbox' });
    // Well past another lease: nothing is sent again.
    await sleep(leaseMs + 1_000);
    expect(callbacks.map((callback) => callback.path)).toEqual(['/a', '/b']);
    expect(b.bugs()).toEqual([]);
  });
});
