/**
 * The request rate on routes that take a credential (gamer, operator, node) is counted by the
 * credential presented, on a real gateway (port 0) with real HTTP clients on distinct loopback source
 * addresses: each credential has its own bucket wherever it comes from, a refused credential is charged
 * to the client address (so invented tokens buy nothing), and everything else is counted by address.
 * The gateway's clock is fake and never moves here, so no bucket refills during a test.
 */

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway, testCredentials } from '../support/gateway.js';

const burst = 4;
/** Tokens of their own per test: a credential's bucket is the same wherever it is presented from. */
const gamer = (n: number) => `gamer-token-front-end-${n}-0123456789`;
const operator = (n: number) => `operator-token-${n}-0123456789abcdef`;

let gw: TestGateway;
let port: number;

beforeAll(async () => {
  gw = await startTestGateway({
    server: { host: '127.0.0.1', port: 0, requestsPerSecondPerAddress: 1, requestBurst: burst },
    auth: {
      gamerTokens: [1, 2, 3].map(gamer),
      operatorTokens: [1, 2].map(operator),
      orchestratorSecret: testCredentials.orchestratorSecret,
      masterSecret: testCredentials.masterSecret,
    },
  });
  port = Number(new URL(gw.url).port);
});

afterAll(async () => {
  await gw?.close();
});

/** One GET of `path` from `from` (a loopback source address), with `token` as bearer if given. */
function get(path: string, from: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
    const request = http.request(
      { host: '127.0.0.1', port, path, method: 'GET', localAddress: from, headers, agent: false },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.on('error', reject);
    request.end();
  });
}

async function statuses(count: number, request: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(await request());
  return out;
}

const ok = (count: number) => new Array(count).fill(200);

describe('rate limit by credential', () => {
  it('two gamer tokens from one address each get a whole bucket; the address keeps its own', async () => {
    const from = '127.0.1.1';
    expect(await statuses(burst, () => get('/v1/catalog', from, gamer(1)))).toEqual(ok(burst));
    expect(await get('/v1/catalog', from, gamer(1))).toBe(429);
    // Another front-end's token behind the same address (a NAT, a proxy) is another client.
    expect(await statuses(burst, () => get('/v1/catalog', from, gamer(2)))).toEqual(ok(burst));
    expect(await get('/v1/catalog', from, gamer(2))).toBe(429);
    // Requests without a credential from that address were never counted against either token.
    expect(await statuses(burst, () => get('/v1/openapi.json', from))).toEqual(ok(burst));
    expect(await get('/v1/openapi.json', from)).toBe(429);
  });

  it('one credential from several addresses shares one bucket', async () => {
    expect(await statuses(burst, () => get('/v1/nodes', '127.0.1.2', operator(1)))).toEqual(ok(burst));
    expect(await get('/v1/nodes', '127.0.1.3', operator(1))).toBe(429);
    // The addresses' own buckets are untouched.
    expect(await get('/v1/openapi.json', '127.0.1.2')).toBe(200);
    expect(await get('/v1/openapi.json', '127.0.1.3')).toBe(200);
  });

  it('invented tokens are charged to the address: 401 while it has tokens, then 429', async () => {
    const from = '127.0.1.4';
    const refused = await statuses(burst, () => get('/v1/catalog', from, `invented-${randomUUID()}`));
    expect(refused).toEqual(new Array(burst).fill(401));
    // A fresh invented token gets no fresh bucket: the address pays, and it is spent.
    expect(await get('/v1/catalog', from, `invented-${randomUUID()}`)).toBe(429);
    expect(await get('/v1/openapi.json', from)).toBe(429);
    // A real credential from that address is still served from its own bucket.
    expect(await get('/v1/catalog', from, gamer(3))).toBe(200);
  });

  it("a credential of the wrong role (403) is charged to the address, and the role's own bucket stays", async () => {
    const from = '127.0.1.5';
    // An operator token on a gamer route: 403, counted against the address, not the token.
    expect(await statuses(burst, () => get('/v1/catalog', from, operator(2)))).toEqual(
      new Array(burst).fill(403),
    );
    expect(await get('/v1/openapi.json', from)).toBe(429);
    expect(await get('/v1/nodes', '127.0.1.7', operator(2))).toBe(200);
  });

  it('a request without a credential, or to an unknown route, is counted by address', async () => {
    const from = '127.0.1.6';
    expect(await get('/v1/catalog', from)).toBe(401);
    expect(await get('/v1/no-such-route', from, gamer(3))).toBe(404);
    expect(await get('/v1/sessions/%zz', from, gamer(3))).toBe(400);
    expect(await get('/v1/openapi.json', from)).toBe(200);
    expect(await get('/v1/openapi.json', from)).toBe(429);
  });
});
