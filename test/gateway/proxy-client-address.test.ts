/**
 * The client address behind proxies, on a real gateway (port 0) with real HTTP, raw TCP and WebSocket
 * clients on distinct loopback source addresses (127.0.0.0/8): X-Forwarded-For counts only from a
 * trusted peer, a PROXY protocol v2 header (built here byte by byte) names the client only when a
 * trusted peer sent it, the rate limit and WebSocket upgrades key on that address, and health checks
 * never spend a bucket.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway, testCredentials } from '../support/gateway.js';

/** Burst 4, one token a second: five quick requests from one address see a 429. */
const burst = 4;

let gw: TestGateway;
let port: number;

beforeAll(async () => {
  gw = await startTestGateway({
    server: {
      host: '127.0.0.1',
      port: 0,
      requestsPerSecondPerAddress: 1,
      requestBurst: burst,
      trustedProxies: ['127.0.0.2', '127.0.0.16/28'],
    },
  });
  port = Number(new URL(gw.url).port);
});

afterAll(async () => {
  await gw?.close();
});

/** One GET from `from` (a loopback source address) with the given headers; resolves with the status. */
function get(
  path: string,
  from: string,
  headers: Record<string, string> = {},
  target: { host: string; port: number } = { host: '127.0.0.1', port },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { ...target, path, method: 'GET', localAddress: from, headers, agent: false },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** `count` GETs of a public route, one after the other; the statuses in order. */
async function spend(count: number, from: string, headers: Record<string, string> = {}): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) statuses.push(await get('/v1/openapi.json', from, headers));
  return statuses;
}

/** Spends a whole bucket and checks that it is empty now (the first `burst` pass, then 429). */
async function exhaust(from: string, headers: Record<string, string> = {}): Promise<void> {
  const statuses = await spend(burst + 2, from, headers);
  expect(statuses.slice(0, burst)).toEqual(new Array(burst).fill(200));
  expect(statuses.slice(burst)).toContain(429);
}

const xff = (value: string) => ({ 'x-forwarded-for': value });

/** The PROXY protocol v2 header (haproxy.org/download/2.6/doc/proxy-protocol.txt, section 2.2). */
function proxyV2Header(
  source: string,
  sourcePort: number,
  destination: string,
  destinationPort: number,
): Buffer {
  const signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const isV6 = net.isIPv6(source);
  const addressBytes = (address: string) => {
    if (!isV6) return Buffer.from(address.split('.').map(Number));
    // Expand `::` and write the eight 16-bit groups.
    const [head = '', tail = ''] = address.split('::');
    const headGroups = head === '' ? [] : head.split(':');
    const tailGroups = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
    const groups = [
      ...headGroups,
      ...new Array(8 - headGroups.length - tailGroups.length).fill('0'),
      ...tailGroups,
    ];
    const bytes = Buffer.alloc(16);
    for (const [index, group] of groups.entries()) bytes.writeUInt16BE(Number.parseInt(group, 16), index * 2);
    return bytes;
  };
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sourcePort, 0);
  ports.writeUInt16BE(destinationPort, 2);
  const addresses = Buffer.concat([addressBytes(source), addressBytes(destination), ports]);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(addresses.length, 0);
  // 0x21: version 2, command PROXY. 0x11: TCP over IPv4; 0x21: TCP over IPv6.
  return Buffer.concat([signature, Buffer.from([0x21, isV6 ? 0x21 : 0x11]), length, addresses]);
}

/** One request on a raw TCP socket from `from`, preceded by `preface`; resolves with the status code. */
function rawRequest(from: string, preface: Buffer, path = '/v1/openapi.json'): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
    const chunks: Buffer[] = [];
    socket.on('connect', () => {
      socket.write(Buffer.concat([preface, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: vca\r\n\r\n`)]));
    });
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const head = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (match) {
        socket.destroy();
        resolve(Number(match[1]));
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`no answer: ${Buffer.concat(chunks).toString('latin1')}`)));
  });
}

async function spendRaw(count: number, from: string, preface: Buffer): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) statuses.push(await rawRequest(from, preface));
  return statuses;
}

/** Opens /v1/play from `from` with `headers`; resolves 'open' or the refusing status code. */
function upgrade(from: string, headers: Record<string, string>): Promise<'open' | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${gw.wsUrl}/v1/play`, {
      localAddress: from,
      headers: { authorization: `Bearer ${testCredentials.gamerToken}`, ...headers },
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

describe('client address: X-Forwarded-For', () => {
  it('from an untrusted peer is ignored: every claimed client shares the peer bucket', async () => {
    await exhaust('127.0.0.3', xff('198.51.100.1'));
    expect(await get('/v1/openapi.json', '127.0.0.3', xff('198.51.100.2'))).toBe(429);
    expect(await get('/v1/openapi.json', '127.0.0.3')).toBe(429);
    // Another peer has its own bucket.
    expect(await get('/v1/openapi.json', '127.0.0.4')).toBe(200);
  });

  it('from a trusted peer splits buckets by client, and the proxy itself keeps its own', async () => {
    await exhaust('127.0.0.2', xff('198.51.100.10'));
    expect(await get('/v1/openapi.json', '127.0.0.2', xff('198.51.100.10'))).toBe(429);
    expect(await get('/v1/openapi.json', '127.0.0.2', xff('198.51.100.11'))).toBe(200);
    expect(await get('/v1/openapi.json', '127.0.0.2')).toBe(200);
    // The same client through another trusted proxy is the same client: same (empty) bucket.
    expect(await get('/v1/openapi.json', '127.0.0.17', xff('198.51.100.10'))).toBe(429);
  });

  it('a spoofed chain: only the right-most untrusted entry counts, whatever the client prepends', async () => {
    await exhaust('127.0.0.2', xff('1.1.1.1, 198.51.100.20'));
    expect(await get('/v1/openapi.json', '127.0.0.2', xff('2.2.2.2, 198.51.100.20'))).toBe(429);
    expect(await get('/v1/openapi.json', '127.0.0.2', xff('198.51.100.21, 198.51.100.20'))).toBe(429);
    // Through two trusted proxies (127.0.0.18 is in 127.0.0.16/28), the client is the entry before them.
    expect(await get('/v1/openapi.json', '127.0.0.2', xff('198.51.100.20, 127.0.0.18'))).toBe(429);
    expect(await get('/v1/openapi.json', '127.0.0.2', xff('198.51.100.22, 127.0.0.18'))).toBe(200);
  });

  it('malformed X-Forwarded-For is no error and no escape: it counts against the proxy', async () => {
    const proxy = '127.0.0.19';
    await exhaust(proxy, xff('garbage'));
    for (const value of ['not-an-ip', '300.1.1.1', '[2001:db8::1', ' , ', `${'9'.repeat(200)}`]) {
      expect(await get('/v1/openapi.json', proxy, xff(value))).toBe(429);
    }
    expect(await get('/v1/openapi.json', proxy, xff('198.51.100.30'))).toBe(200);
  });

  it('IPv6 clients: buckets per address, whatever the spelling', async () => {
    await exhaust('127.0.0.20', xff('2001:db8::1'));
    expect(await get('/v1/openapi.json', '127.0.0.20', xff('2001:DB8:0:0:0:0:0:1'))).toBe(429);
    expect(await get('/v1/openapi.json', '127.0.0.20', xff('[2001:db8::1]:443'))).toBe(429);
    expect(await get('/v1/openapi.json', '127.0.0.20', xff('2001:db8::2'))).toBe(200);
  });
});

describe('client address: PROXY protocol v2', () => {
  it('from a trusted peer, the header names the client (IPv4 and IPv6)', async () => {
    const clientA = proxyV2Header('192.0.2.10', 40_000, '127.0.0.1', port);
    const clientB = proxyV2Header('192.0.2.11', 40_001, '127.0.0.1', port);
    const statusesA = await spendRaw(burst + 2, '127.0.0.2', clientA);
    expect(statusesA.slice(0, burst)).toEqual(new Array(burst).fill(200));
    expect(statusesA.slice(burst)).toContain(429);
    expect(await rawRequest('127.0.0.2', clientB)).toBe(200);
    const v6 = proxyV2Header('2001:db8::77', 40_002, '2001:db8::1', port);
    const statusesV6 = await spendRaw(burst + 2, '127.0.0.2', v6);
    expect(statusesV6.slice(0, burst)).toEqual(new Array(burst).fill(200));
    expect(statusesV6.slice(burst)).toContain(429);
    expect(await rawRequest('127.0.0.2', proxyV2Header('2001:db8::78', 40_003, '2001:db8::1', port))).toBe(
      200,
    );
  });

  it('malformed PROXY headers get no answer on their connection, and the gateway keeps serving', async () => {
    const signature = proxyV2Header('192.0.2.1', 1, '127.0.0.1', port).subarray(0, 12);
    const malformed = [
      Buffer.concat([signature, Buffer.from([0x21, 0x11, 0xff, 0xff, 1, 2, 3])]), // length past the data
      Buffer.concat([signature, Buffer.from([0x31, 0x11, 0, 12]), Buffer.alloc(12)]), // version 3
      Buffer.concat([signature, Buffer.from([0x21, 0x31, 0, 216]), Buffer.alloc(216)]), // AF_UNIX
      Buffer.from('PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n'), // version 1 text: not spoken here
    ];
    const answers = await Promise.all(
      malformed.map(
        (preface) =>
          new Promise<string>((resolve) => {
            const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
            let received = '';
            socket.on('connect', () =>
              socket.write(
                Buffer.concat([preface, Buffer.from('GET /healthz HTTP/1.1\r\nHost: vca\r\n\r\n')]),
              ),
            );
            socket.on('data', (chunk) => {
              received += chunk.toString('latin1');
            });
            socket.on('error', () => resolve(received));
            socket.on('close', () => resolve(received));
            setTimeout(() => {
              socket.destroy();
              resolve(received);
            }, 1_000);
          }),
      ),
    );
    expect(answers).toEqual(['', '', '', '']);
    expect(await get('/healthz', '127.0.0.2')).toBe(200);
    expect(await rawRequest('127.0.0.2', proxyV2Header('192.0.2.99', 1, '127.0.0.1', port))).toBe(200);
  });

  it('from an untrusted peer, the header is read but the peer stays the client', async () => {
    const statuses = await spendRaw(
      burst + 2,
      '127.0.0.5',
      proxyV2Header('192.0.2.20', 1, '127.0.0.1', port),
    );
    expect(statuses.slice(burst)).toContain(429);
    expect(await rawRequest('127.0.0.5', proxyV2Header('192.0.2.21', 1, '127.0.0.1', port))).toBe(429);
  });
});

describe('client address: health checks and WebSocket upgrades', () => {
  it('/healthz and /readyz never spend a bucket and never answer 429', async () => {
    const checker = '127.0.0.6';
    for (let i = 0; i < 3 * burst; i++) {
      expect(await get('/healthz', checker)).toBe(200);
      expect(await get('/readyz', checker)).toBe(200);
    }
    // The bucket is untouched...
    expect(await spend(burst, checker)).toEqual(new Array(burst).fill(200));
    // ... and once it is empty, health checks still pass.
    expect(await get('/v1/openapi.json', checker)).toBe(429);
    expect(await get('/healthz', checker)).toBe(200);
    expect(await get('/readyz', checker, xff('198.51.100.40'))).toBe(200);
  });

  it('an upgrade is limited by its client address, not by the proxy', async () => {
    await exhaust('127.0.0.2', xff('198.51.100.50'));
    expect(await upgrade('127.0.0.2', xff('198.51.100.50'))).toBe(429);
    expect(await upgrade('127.0.0.2', xff('198.51.100.51'))).toBe('open');
  });
});

describe('client address: an IPv6 peer', () => {
  it('a trusted ::1 peer names its clients; the same peer without the header is one client', async () => {
    const v6 = await startTestGateway({
      server: {
        host: '::1',
        port: 0,
        requestsPerSecondPerAddress: 1,
        requestBurst: burst,
        trustedProxies: ['::1/128'],
      },
    });
    try {
      const target = { host: '::1', port: Number(new URL(v6.url).port) };
      const statuses: number[] = [];
      for (let i = 0; i < burst + 2; i++)
        statuses.push(await get('/v1/openapi.json', '::1', xff('2001:db8::10'), target));
      expect(statuses.slice(0, burst)).toEqual(new Array(burst).fill(200));
      expect(statuses.slice(burst)).toContain(429);
      expect(await get('/v1/openapi.json', '::1', xff('2001:db8::11'), target)).toBe(200);
      expect(await get('/v1/openapi.json', '::1', xff('198.51.100.60'), target)).toBe(200);
      expect(await get('/v1/openapi.json', '::1', {}, target)).toBe(200);
    } finally {
      await v6.close();
    }
  });
});
