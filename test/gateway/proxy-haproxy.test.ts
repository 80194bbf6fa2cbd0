/**
 * The gateway behind a real HAProxy, both ways HAProxy names the client: `option forwardfor`
 * (X-Forwarded-For) and `send-proxy-v2` (PROXY protocol v2). Two clients behind it get separate
 * rate-limit buckets, HAProxy's own health checks (HTTP/1.1, every 20 ms, on the data-plane port)
 * never spend them nor get a 429, and a WebSocket upgrade through it is not refused.
 */
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freePort } from '../../kit/free-port.js';
import { eventually, sleep } from '../../kit/polling.js';
import { startTestGateway, type TestGateway, testCredentials } from '../support/gateway.js';
import { findHaproxy, haproxyMissing, type RunningHaproxy, startHaproxy } from '../support/haproxy.js';

const haproxyBinary = findHaproxy();
const burst = 4;

let gw: TestGateway | undefined;
let haproxy: RunningHaproxy | undefined;
afterAll(async () => {
  await haproxy?.stop();
  await gw?.close();
});

function get(port: number, path: string, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, path, localAddress: from, agent: false },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.on('error', reject);
    request.end();
  });
}

async function spend(port: number, count: number, from: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) statuses.push(await get(port, '/v1/openapi.json', from));
  return statuses;
}

function upgrade(port: number, from: string): Promise<'open' | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/play`, {
      localAddress: from,
      headers: { authorization: `Bearer ${testCredentials.gamerToken}` },
    });
    socket.once('open', () => {
      socket.close();
      resolve('open');
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', reject);
  });
}

describe('behind a real HAProxy', () => {
  const title =
    'forwardfor and send-proxy-v2: separate buckets per client, free health checks, upgrades pass';
  it(haproxyBinary === undefined ? `${title} [skipped: ${haproxyMissing}]` : title, async (context) => {
    if (haproxyBinary === undefined) {
      context.skip(haproxyMissing);
      return;
    }
    gw = await startTestGateway({
      server: {
        host: '127.0.0.1',
        port: 0,
        requestsPerSecondPerAddress: 1,
        requestBurst: burst,
        // HAProxy reaches the gateway from 127.0.0.1; the clients come from other loopback addresses.
        trustedProxies: ['127.0.0.1'],
      },
    });
    const gatewayPort = Number(new URL(gw.url).port);
    const forwardforPort = await freePort();
    const proxyV2Port = await freePort();
    const check = 'check inter 20ms fall 1 rise 1';
    haproxy = startHaproxy(
      haproxyBinary,
      [
        'defaults',
        '  mode http',
        '  timeout connect 1s',
        '  timeout client 5s',
        '  timeout server 5s',
        '  timeout check 1s',
        '  timeout tunnel 5s',
        'frontend via_forwardfor',
        `  bind 127.0.0.1:${forwardforPort}`,
        '  option forwardfor',
        '  default_backend vca_forwardfor',
        'backend vca_forwardfor',
        '  option httpchk',
        '  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host vca',
        '  http-check expect status 200',
        `  server vca 127.0.0.1:${gatewayPort} ${check}`,
        'frontend via_proxy_v2',
        `  bind 127.0.0.1:${proxyV2Port}`,
        '  default_backend vca_proxy_v2',
        'backend vca_proxy_v2',
        '  option httpchk',
        '  http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host vca',
        '  http-check expect status 200',
        `  server vca 127.0.0.1:${gatewayPort} send-proxy-v2 check-send-proxy ${check}`,
      ].join('\n'),
    );
    const what = () => `haproxy output:\n${haproxy!.output()}`;
    const server = async (backend: string) =>
      (await haproxy!.stats()).find((row) => row.pxname === backend && row.svname === 'vca')!;

    await eventually(
      async () => {
        expect((await server('vca_forwardfor')).status, what()).toBe('UP');
        expect((await server('vca_proxy_v2')).status, what()).toBe('UP');
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'haproxy marks both backends UP' },
    );
    // ~75 checks per backend at 20 ms: many times the burst, from HAProxy's one address.
    await sleep(1_500);
    // The last completed check (`* L7OK` with code 0 means one is running right now: read again).
    const lastCheck = (backend: string) =>
      eventually(
        async () => {
          const row = await server(backend);
          expect(row.check_status).not.toMatch(/^\*/);
          return row;
        },
        { timeoutMs: 5_000, intervalMs: 5, what: `a completed check of ${backend}` },
      );
    for (const backend of ['vca_forwardfor', 'vca_proxy_v2']) {
      const row = await lastCheck(backend);
      expect({ backend, status: row.status, check: row.check_status, code: row.check_code }, what()).toEqual({
        backend,
        status: 'UP',
        check: 'L7OK',
        code: '200',
      });
      expect(row.chkfail, what()).toBe('0');
    }

    for (const [port, clientA, clientB] of [
      [forwardforPort, '127.0.0.7', '127.0.0.8'],
      [proxyV2Port, '127.0.0.9', '127.0.0.10'],
    ] as const) {
      // A WebSocket upgrade after all those checks is not refused.
      expect(await upgrade(port, clientA)).toBe('open');
      const statusesA = await spend(port, burst + 2, clientA);
      expect(statusesA.slice(0, burst - 1)).toEqual(new Array(burst - 1).fill(200));
      expect(statusesA).toContain(429);
      // Client A's empty bucket is not client B's.
      expect(await get(port, '/v1/openapi.json', clientB)).toBe(200);
      expect(await upgrade(port, clientB)).toBe('open');
      // And HAProxy's checks still pass.
      expect((await lastCheck(port === forwardforPort ? 'vca_forwardfor' : 'vca_proxy_v2')).check_code).toBe(
        '200',
      );
    }
  }, 40_000);
});
