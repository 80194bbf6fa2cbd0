/** Specification of the uWebSockets.js adapter: real server on port 0, real fetch / http / ws clients. */

import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { VcaError } from '../../src/errors.js';
import type { WsSession } from '../../src/http/handler-api.js';
import {
  assertNativeUws,
  type HttpLimits,
  HttpServer,
  type HttpServerOptions,
} from '../../src/http/uws-server.js';

const defaultLimits: HttpLimits = {
  maxBodyBytes: 1024,
  maxWsPayloadBytes: 4096,
  wsIdleTimeoutSeconds: 30,
  maxConnectionsPerAddress: 4,
  requestsPerSecondPerAddress: 10_000,
  requestBurst: 10_000,
  wsMaxBackpressureBytes: 64 * 1024,
  wsMessagesPerSecond: 1000,
  wsMessageBurst: 1000,
};

interface Started {
  server: HttpServer;
  port: number;
  base: string;
  wsBase: string;
  errors: unknown[];
}

const started: HttpServer[] = [];

async function startServer(
  setup: (server: HttpServer) => void,
  overrides: Partial<Omit<HttpServerOptions, 'limits'>> & { limits?: Partial<HttpLimits> } = {},
): Promise<Started> {
  const errors: unknown[] = [];
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'silent' }),
    onError: (err) => errors.push(err),
    ...overrides,
    limits: { ...defaultLimits, ...overrides.limits },
  });
  setup(server);
  const port = await server.listen();
  started.push(server);
  return { server, port, base: `http://127.0.0.1:${port}`, wsBase: `ws://127.0.0.1:${port}`, errors };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A ws client that queues what it receives so tests can await messages in order. */
class TestClient {
  readonly messages: unknown[] = [];
  private waiters: Array<(message: unknown) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      const message = isBinary ? data : JSON.parse(data.toString());
      const waiter = this.waiters.shift();
      if (waiter) waiter(message);
      else this.messages.push(message);
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
  }

  next(): Promise<unknown> {
    if (this.messages.length > 0) return Promise.resolve(this.messages.shift());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }
}

async function connect(url: string): Promise<TestClient> {
  const socket = new WebSocket(url);
  const client = new TestClient(socket);
  await once(socket, 'open');
  return client;
}

/** Attempts an upgrade that the server must refuse; resolves with the HTTP status and parsed body. */
function refusedUpgrade(url: string): Promise<{ status: number; contentType: string; body: unknown }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.on('open', () => reject(new Error('upgrade unexpectedly accepted')));
    socket.on('error', () => {});
    socket.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type']),
          body: JSON.parse(text),
        });
        socket.terminate();
      });
    });
  });
}

/** Sends a request with node:http so a test controls exactly how (and whether) the body is written. */
function rawRequest(
  port: number,
  options: http.RequestOptions,
): {
  req: http.ClientRequest;
  response: Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>;
} {
  const req = http.request({ host: '127.0.0.1', port, agent: false, ...options });
  const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
    },
  );
  return { req, response };
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.close()));
});

describe('uws binding', () => {
  it('is the native binary, not the pure-JS fallback', () => {
    expect(() => assertNativeUws()).not.toThrow();
  });

  it('refuses to construct a server on the pure-JS fallback', () => {
    const script =
      "import { HttpServer } from './src/http/uws-server.ts';" +
      "try { new HttpServer({ host: '127.0.0.1', port: 0, limits: {}, logger: {} }); process.exit(0); }" +
      'catch (err) { process.stderr.write(err.message); process.exit(3); }';
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, UWS_USE_FALLBACK: '1' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(3);
    expect(result.stderr).toMatch(/pure-JS fallback.*refusing to start/);
  });
});

describe('http: routing', () => {
  let app: Started;
  let handlerCalls = 0;

  beforeAll(async () => {
    app = await startServer((server) => {
      server.route('GET', '/v1/sessions/:id', (ctx) => {
        handlerCalls += 1;
        return {
          status: 200,
          body: {
            method: ctx.method,
            path: ctx.path,
            params: ctx.params,
            tag: ctx.query.get('tag'),
            header: ctx.headers['x-test-header'],
            remoteAddress: ctx.remoteAddress,
          },
        };
      });
      server.route('GET', '/v1/sessions/mine', () => ({ status: 200, body: { route: 'static' } }));
      server.route('DELETE', '/v1/sessions/:id', () => ({ status: 204 }));
      server.route('POST', '/v1/nodes/:id/sessions/:sid/ended', (ctx) => ({ status: 200, body: ctx.params }));
      server.route('GET', '/text', () => ({ status: 200, rawBody: 'plain', headers: { 'x-extra': 'yes' } }));
    });
    // This suite's server outlives afterEach; take it out of the per-test list.
    started.splice(started.indexOf(app.server), 1);
  });

  afterAll(async () => {
    await app.server.close();
  });

  it('routes to the handler with decoded :params, query, lower-case headers and the client address', async () => {
    const res = await fetch(`${app.base}/v1/sessions/a%20b%2Fc?tag=x&tag=y`, {
      headers: { 'X-Test-Header': 'hello' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({
      method: 'GET',
      path: '/v1/sessions/a%20b%2Fc',
      params: { id: 'a b/c' },
      tag: 'x',
      header: 'hello',
      remoteAddress: '127.0.0.1',
    });
  });

  it('prefers a static segment over a parameter', async () => {
    const res = await fetch(`${app.base}/v1/sessions/mine`);
    expect(await res.json()).toEqual({ route: 'static' });
  });

  it('fills several parameters in one path', async () => {
    const res = await fetch(`${app.base}/v1/nodes/n1/sessions/s9/ended`, { method: 'POST' });
    expect(await res.json()).toEqual({ id: 'n1', sid: 's9' });
  });

  it('answers 204 with no body', async () => {
    const res = await fetch(`${app.base}/v1/sessions/x`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
  });

  it('sends raw bodies with their content type and extra headers', async () => {
    const res = await fetch(`${app.base}/text`);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('x-extra')).toBe('yes');
    expect(await res.text()).toBe('plain');
  });

  it('answers an unknown path with 404 VCA_ERR_ROUTE_NOT_FOUND as problem+json', async () => {
    const res = await fetch(`${app.base}/v1/nowhere`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({
      type: 'https://vca.dev/problems/vca-err-route-not-found',
      title: 'No such route',
      status: 404,
      code: 'VCA_ERR_ROUTE_NOT_FOUND',
    });
  });

  it('answers a known path with a wrong method with 405 and an Allow header', async () => {
    const res = await fetch(`${app.base}/v1/sessions/x`, { method: 'PUT' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('DELETE, GET');
    expect(await res.json()).toMatchObject({ code: 'VCA_ERR_METHOD_NOT_ALLOWED', status: 405 });
  });

  it('answers a malformed percent-encoding with 400 and never calls the handler', async () => {
    const before = handlerCalls;
    const res = await fetch(`${app.base}/v1/sessions/%E0%A4%A`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'VCA_ERR_VALIDATION' });
    expect(handlerCalls).toBe(before);
  });

  it('does not fill a parameter with an empty segment', async () => {
    const res = await fetch(`${app.base}/v1/sessions/`);
    expect(res.status).toBe(404);
  });
});

describe('http: request bodies', () => {
  let app: Started;
  let echoCalls = 0;
  const bodyOutcomes: string[] = [];

  beforeAll(async () => {
    app = await startServer((server) => {
      server.route('POST', '/echo', async (ctx) => {
        echoCalls += 1;
        const body = await ctx.readJson();
        return { status: 200, body: { received: body ?? null, empty: body === undefined } };
      });
      server.route('PUT', '/raw', async (ctx) => {
        const bytes = await ctx.readRaw();
        return { status: 200, rawBody: bytes, contentType: 'application/octet-stream' };
      });
      server.route('POST', '/watched', async (ctx) => {
        try {
          await ctx.readJson();
          bodyOutcomes.push('read');
        } catch (err) {
          bodyOutcomes.push(err instanceof VcaError ? err.code : (err as Error).name);
          throw err;
        }
        return { status: 200, body: {} };
      });
    });
    started.splice(started.indexOf(app.server), 1);
  });

  afterAll(async () => {
    await app.server.close();
  });

  it('echoes a JSON body', async () => {
    const res = await fetch(`${app.base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ game: 'quake', fps: 60 }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: { game: 'quake', fps: 60 }, empty: false });
  });

  it('accepts +json media types', async () => {
    const res = await fetch(`${app.base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: '[1,2]',
    });
    expect(await res.json()).toEqual({ received: [1, 2], empty: false });
  });

  it('reads an absent body as undefined whatever the content type', async () => {
    const res = await fetch(`${app.base}/echo`, { method: 'POST' });
    expect(await res.json()).toEqual({ received: null, empty: true });
  });

  it('returns raw bytes intact', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const res = await fetch(`${app.base}/raw`, { method: 'PUT', body: bytes });
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
  });

  it('reassembles a chunked body within the limit', async () => {
    const { req, response } = rawRequest(app.port, {
      method: 'POST',
      path: '/echo',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    });
    req.write('{"parts":');
    await sleep(20);
    req.write('[1,2,3]}');
    req.end();
    const res = await response;
    expect(JSON.parse(res.body)).toEqual({ received: { parts: [1, 2, 3] }, empty: false });
  });

  it('rejects a content-length over the limit with 413 before running the handler', async () => {
    const before = echoCalls;
    const res = await fetch(`${app.base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(2000) }),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ code: 'VCA_ERR_BODY_TOO_LARGE', status: 413, limitBytes: 1024 });
    expect(echoCalls).toBe(before);
  });

  it('rejects a streamed chunked body with 413 as soon as it passes the limit', async () => {
    const { req, response } = rawRequest(app.port, {
      method: 'POST',
      path: '/watched',
      headers: {
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
        connection: 'keep-alive',
      },
    });
    req.write(`["${'a'.repeat(600)}",`);
    await sleep(20);
    req.write(`"${'b'.repeat(600)}",`);
    // The request is never ended: the answer must come from the limit alone.
    const res = await response;
    req.destroy();
    expect(res.status).toBe(413);
    // The rest of the body is never read, so the connection cannot be reused.
    expect(res.headers.connection).toBe('close');
    expect(JSON.parse(res.body)).toMatchObject({ code: 'VCA_ERR_BODY_TOO_LARGE' });
    await sleep(20);
    expect(bodyOutcomes.at(-1)).toBe('VCA_ERR_BODY_TOO_LARGE');
  });

  it('answers a non-JSON content type with 415', async () => {
    const res = await fetch(`${app.base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{"a":1}',
    });
    expect(res.status).toBe(415);
    expect(await res.json()).toMatchObject({ code: 'VCA_ERR_UNSUPPORTED_MEDIA_TYPE' });
  });

  it('answers malformed JSON with 400 VCA_ERR_MALFORMED_JSON', async () => {
    const res = await fetch(`${app.base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'VCA_ERR_MALFORMED_JSON', status: 400 });
  });

  it('refuses JSON nested deeper than 64 levels with 400 VCA_ERR_VALIDATION before parsing it', async () => {
    const post = (body: string) =>
      fetch(`${app.base}/watched`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const deep = await post(`${'['.repeat(65)}${']'.repeat(65)}`);
    expect(deep.status).toBe(400);
    expect(deep.headers.get('content-type')).toBe('application/problem+json');
    expect(await deep.json()).toMatchObject({ code: 'VCA_ERR_VALIDATION', maxDepth: 64 });
    expect(bodyOutcomes.at(-1)).toBe('VCA_ERR_VALIDATION');
    const deepObjects = await post(`${'{"a":'.repeat(150)}1${'}'.repeat(150)}`);
    expect(await deepObjects.json()).toMatchObject({ code: 'VCA_ERR_VALIDATION', maxDepth: 64 });
    // Brackets inside strings are text, not nesting; 64 levels are still fine.
    const inString = await post(JSON.stringify({ text: '['.repeat(900) }));
    expect(inString.status).toBe(200);
    expect((await post(`${'['.repeat(64)}${']'.repeat(64)}`)).status).toBe(200);
  });

  it('survives a client that aborts mid-body and keeps serving', async () => {
    const { req, response } = rawRequest(app.port, {
      method: 'POST',
      path: '/watched',
      headers: { 'content-type': 'application/json', 'content-length': '500' },
    });
    response.catch(() => {});
    req.write('{"partial":');
    await sleep(30);
    req.destroy();
    await sleep(50);
    expect(bodyOutcomes.at(-1)).toBe('RequestAbortedError');
    const res = await fetch(`${app.base}/echo`, { method: 'POST' });
    expect(res.status).toBe(200);
  });
});

describe('http: handler errors and async replies', () => {
  it('maps a thrown VcaError to its status as problem+json with extra members and Retry-After', async () => {
    const app = await startServer((server) => {
      server.route('POST', '/v1/sessions', () => {
        throw new VcaError('VCA_ERR_QUEUE_FULL', 'The queue holds 500 sessions; retry later', {
          retryAfterSeconds: 7.2,
          queueLength: 500,
          status: 200,
        });
      });
    });
    const res = await fetch(`${app.base}/v1/sessions`, { method: 'POST' });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.headers.get('retry-after')).toBe('8');
    expect(await res.json()).toEqual({
      type: 'https://vca.dev/problems/vca-err-queue-full',
      title: 'The waiting queue is full',
      status: 503,
      detail: 'The queue holds 500 sessions; retry later',
      code: 'VCA_ERR_QUEUE_FULL',
      retryAfterSeconds: 7.2,
      queueLength: 500,
    });
    expect(app.errors).toEqual([]);
  });

  it('maps any other error to 500 VCA_ERR_INTERNAL without leaking it, reports it, and keeps serving', async () => {
    const app = await startServer((server) => {
      server.route('GET', '/boom', () => {
        throw new Error('secret database password is hunter2');
      });
      server.route('GET', '/async-boom', async () => {
        await sleep(5);
        throw new TypeError('secret stack detail');
      });
      server.route('GET', '/bad-reply', () => ({ status: 200, body: { big: 10n } }));
      server.route('GET', '/ok', () => ({ status: 200, body: { ok: true } }));
    });
    for (const path of ['/boom', '/async-boom', '/bad-reply']) {
      const res = await fetch(`${app.base}${path}`);
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(text).not.toMatch(/secret|hunter2|BigInt|stack/i);
      expect(JSON.parse(text)).toMatchObject({
        code: 'VCA_ERR_INTERNAL',
        status: 500,
        detail: 'Internal error',
      });
    }
    expect(app.errors).toHaveLength(3);
    const res = await fetch(`${app.base}/ok`);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('replies after awaits (the corked path), including many concurrent requests', async () => {
    const app = await startServer((server) => {
      server.route('GET', '/slow/:n', async (ctx) => {
        await sleep(Number(ctx.params.n) % 20);
        await new Promise((resolve) => setImmediate(resolve));
        return { status: 201, body: { n: Number(ctx.params.n) }, headers: { 'x-after-await': 'true' } };
      });
    });
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, n) =>
        fetch(`${app.base}/slow/${n}`).then(async (res) => ({ res, body: await res.json() })),
      ),
    );
    responses.forEach(({ res, body }, n) => {
      expect(res.status).toBe(201);
      expect(res.headers.get('x-after-await')).toBe('true');
      expect(body).toEqual({ n });
    });
  });

  it('drops the reply of a request whose client went away, without crashing or reporting an error', async () => {
    let replied = false;
    const app = await startServer((server) => {
      server.route('GET', '/slow', async () => {
        await sleep(150);
        replied = true;
        return { status: 200, body: { late: true } };
      });
      server.route('GET', '/ok', () => ({ status: 200, body: { ok: true } }));
    });
    await expect(fetch(`${app.base}/slow`, { signal: AbortSignal.timeout(30) })).rejects.toThrow();
    await sleep(250);
    expect(replied).toBe(true);
    expect(app.errors).toEqual([]);
    const res = await fetch(`${app.base}/ok`);
    expect(res.status).toBe(200);
  });
});

describe('http: graceful close', () => {
  it('lets in-flight requests finish, then refuses connections', async () => {
    const app = await startServer((server) => {
      server.route('GET', '/slow', async () => {
        await sleep(100);
        return { status: 200, body: { finished: true } };
      });
    });
    const inFlight = fetch(`${app.base}/slow`);
    await sleep(20);
    const closed = app.server.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.json()).toEqual({ finished: true });
    await closed;
    await expect(fetch(`${app.base}/slow`)).rejects.toThrow();
  });

  it('stops waiting for a request that never finishes after closeGraceMs', async () => {
    const app = await startServer(
      (server) => {
        server.route('GET', '/hang', () => new Promise(() => {}));
      },
      { closeGraceMs: 50 },
    );
    const hanging = fetch(`${app.base}/hang`).catch((err: unknown) => err);
    await sleep(20);
    const startedAt = Date.now();
    await app.server.close();
    expect(Date.now() - startedAt).toBeLessThan(1_000);
    expect(await hanging).toBeInstanceOf(Error);
  });
});

describe('http: per-address rate limit', () => {
  it('answers 429 VCA_ERR_RATE_LIMITED with Retry-After once the burst is spent, and refills over time', async () => {
    let now = 1_000_000;
    const app = await startServer(
      (server) => {
        server.route('GET', '/ping', () => ({ status: 200, body: { pong: true } }));
      },
      { now: () => now, limits: { requestsPerSecondPerAddress: 0.5, requestBurst: 3 } },
    );
    for (let i = 0; i < 3; i += 1) {
      expect((await fetch(`${app.base}/ping`)).status).toBe(200);
    }
    const limited = await fetch(`${app.base}/ping`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(await limited.json()).toMatchObject({ code: 'VCA_ERR_RATE_LIMITED', retryAfterSeconds: 2 });
    // Unknown routes spend tokens too, so probing is no way around the limit.
    expect((await fetch(`${app.base}/nowhere`)).status).toBe(429);
    now += 2_000;
    expect((await fetch(`${app.base}/ping`)).status).toBe(200);
  });
});

describe('websocket', () => {
  interface PlayData {
    user: string;
    room: string;
  }

  const closedCodes: number[] = [];

  function playRoute(server: HttpServer): void {
    server.websocket<PlayData>('/v1/play/:room', {
      async upgrade(ctx) {
        await sleep(10);
        const token = ctx.query.get('token') ?? ctx.headers.authorization;
        if (token !== 'good') throw new VcaError('VCA_ERR_UNAUTHORIZED', 'Send a valid token');
        return { user: 'gamer-1', room: ctx.params.room ?? '' };
      },
      open(session) {
        session.send({ type: 'hello', user: session.data.user, room: session.data.room });
      },
      async message(session: WsSession<PlayData>, message) {
        const typed = message as { type?: string };
        if (typed.type === 'fail') throw new VcaError('VCA_ERR_UNKNOWN_GAME', 'No such game');
        if (typed.type === 'crash') throw new Error('internal secret');
        if (typed.type === 'slow') await sleep(20);
        session.send({ type: 'echo', message });
      },
      close(_session, code) {
        closedCodes.push(code);
      },
    });
  }

  it('upgrades asynchronously, opens with route data and echoes JSON messages in order', async () => {
    const app = await startServer(playRoute);
    const client = await connect(`${app.wsBase}/v1/play/lobby?token=good`);
    expect(await client.next()).toEqual({ type: 'hello', user: 'gamer-1', room: 'lobby' });
    client.send({ type: 'slow', n: 1 });
    client.send({ type: 'ping', n: 2 });
    expect(await client.next()).toEqual({ type: 'echo', message: { type: 'slow', n: 1 } });
    expect(await client.next()).toEqual({ type: 'echo', message: { type: 'ping', n: 2 } });
    expect(app.server.connections).toBe(1);
    client.socket.close(1000);
    expect((await client.closed).code).toBe(1000);
    await sleep(20);
    expect(app.server.connections).toBe(0);
    expect(closedCodes.at(-1)).toBe(1000);
  });

  it('answers malformed JSON and binary frames with an error message and keeps the socket open', async () => {
    const app = await startServer(playRoute);
    const client = await connect(`${app.wsBase}/v1/play/a?token=good`);
    await client.next();
    client.send('{not json');
    expect(await client.next()).toMatchObject({ type: 'error', code: 'VCA_ERR_MALFORMED_JSON' });
    client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'VCA_ERR_MALFORMED_JSON' });
    client.send({ type: 'ping' });
    expect(await client.next()).toEqual({ type: 'echo', message: { type: 'ping' } });
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('turns handler errors into error messages without leaking internals', async () => {
    const app = await startServer(playRoute);
    const client = await connect(`${app.wsBase}/v1/play/a?token=good`);
    await client.next();
    client.send({ type: 'fail' });
    expect(await client.next()).toEqual({
      type: 'error',
      code: 'VCA_ERR_UNKNOWN_GAME',
      detail: 'No such game',
    });
    client.send({ type: 'crash' });
    expect(await client.next()).toEqual({
      type: 'error',
      code: 'VCA_ERR_INTERNAL',
      detail: 'Internal error',
    });
    expect(app.errors).toHaveLength(1);
    client.send({ type: 'ping' });
    expect(await client.next()).toEqual({ type: 'echo', message: { type: 'ping' } });
  });

  it('answers a message nested deeper than 64 levels with an error message and keeps the socket open', async () => {
    const app = await startServer(playRoute);
    const client = await connect(`${app.wsBase}/v1/play/a?token=good`);
    await client.next();
    client.send(`${'['.repeat(2000)}${']'.repeat(2000)}`);
    expect(await client.next()).toMatchObject({ type: 'error', code: 'VCA_ERR_VALIDATION', maxDepth: 64 });
    client.send({ type: 'ping' });
    expect(await client.next()).toEqual({ type: 'echo', message: { type: 'ping' } });
  });

  it('closes a socket that floods past its message budget with 1008 and a reason, and keeps serving the others', async () => {
    const cuts: string[] = [];
    const app = await startServer(playRoute, {
      limits: { wsMessagesPerSecond: 10, wsMessageBurst: 20 },
      onWebSocketCut: (reason) => cuts.push(reason),
    });
    const calm = await connect(`${app.wsBase}/v1/play/a?token=good`);
    const flood = await connect(`${app.wsBase}/v1/play/a?token=good`);
    await calm.next();
    await flood.next();
    // One-byte frames as fast as the client can write them, as the flood that starved everyone did.
    for (let i = 0; i < 5_000 && flood.socket.readyState === WebSocket.OPEN; i += 1) flood.socket.send('x');
    expect(await flood.closed).toEqual({ code: 1008, reason: 'message rate over 10/s (burst 20)' });
    // The burst was served (each malformed frame answered) before the cut; nothing after it.
    expect(flood.messages.length).toBeLessThanOrEqual(20);
    expect(cuts).toEqual(['message-rate']);
    calm.send({ type: 'ping', n: 1 });
    expect(await calm.next()).toEqual({ type: 'echo', message: { type: 'ping', n: 1 } });
    expect(calm.socket.readyState).toBe(WebSocket.OPEN);
    await sleep(20);
    expect(app.server.connections).toBe(1);
  });

  it('refills a message budget over time: a socket within its sustained rate is never cut', async () => {
    let now = 1_000_000;
    const cuts: string[] = [];
    const app = await startServer(playRoute, {
      now: () => now,
      limits: { wsMessagesPerSecond: 2, wsMessageBurst: 3 },
      onWebSocketCut: (reason) => cuts.push(reason),
    });
    const client = await connect(`${app.wsBase}/v1/play/a?token=good`);
    await client.next();
    for (let n = 0; n < 10; n += 1) {
      client.send({ type: 'ping', n });
      expect(await client.next()).toEqual({ type: 'echo', message: { type: 'ping', n } });
      now += 500;
    }
    for (let n = 0; n < 3; n += 1) client.send({ type: 'ping', n });
    for (let n = 0; n < 3; n += 1) await client.next();
    client.send({ type: 'ping', n: 3 });
    expect((await client.closed).code).toBe(1008);
    expect(cuts).toEqual(['message-rate']);
  });

  it('closes a socket that sends a message over maxWsPayloadBytes', async () => {
    const app = await startServer(playRoute, { limits: { maxWsPayloadBytes: 256 } });
    const client = await connect(`${app.wsBase}/v1/play/a?token=good`);
    await client.next();
    client.send({ pad: 'x'.repeat(1000) });
    const { code } = await client.closed;
    expect(code).not.toBe(1000);
    await sleep(20);
    expect(app.server.connections).toBe(0);
  });

  it('refuses an upgrade with the thrown VcaError as problem+json', async () => {
    const app = await startServer(playRoute);
    const refused = await refusedUpgrade(`${app.wsBase}/v1/play/a?token=bad`);
    expect(refused.status).toBe(401);
    expect(refused.contentType).toBe('application/problem+json');
    expect(refused.body).toMatchObject({
      code: 'VCA_ERR_UNAUTHORIZED',
      status: 401,
      detail: 'Send a valid token',
    });
    const unknown = await refusedUpgrade(`${app.wsBase}/v1/elsewhere`);
    expect(unknown.status).toBe(404);
  });

  it('answers a plain GET on a WebSocket route without upgrading', async () => {
    const app = await startServer(playRoute);
    const res = await fetch(`${app.base}/v1/play/a?token=good`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'VCA_ERR_VALIDATION' });
  });

  it('caps concurrent WebSockets per address with 429 and frees the slot on close', async () => {
    const app = await startServer(playRoute, { limits: { maxConnectionsPerAddress: 2 } });
    const first = await connect(`${app.wsBase}/v1/play/a?token=good`);
    await connect(`${app.wsBase}/v1/play/a?token=good`);
    const refused = await refusedUpgrade(`${app.wsBase}/v1/play/a?token=good`);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'VCA_ERR_TOO_MANY_CONNECTIONS' });
    // A refused upgrade must not keep its reserved slot either.
    await refusedUpgrade(`${app.wsBase}/v1/play/a?token=bad`);
    first.socket.close();
    await first.closed;
    await sleep(20);
    const again = await connect(`${app.wsBase}/v1/play/a?token=good`);
    expect(await again.next()).toMatchObject({ type: 'hello' });
    expect(app.server.connections).toBe(2);
  });

  it('drops a consumer that stops reading once backpressure passes the limit', async () => {
    let serverSession: WsSession<unknown> | undefined;
    const app = await startServer(
      (server) => {
        server.websocket('/feed', {
          upgrade: () => ({}),
          open(session) {
            serverSession = session;
          },
          message() {},
        });
      },
      { limits: { wsMaxBackpressureBytes: 16 * 1024 } },
    );
    const client = await connect(`${app.wsBase}/feed`);
    await sleep(20);
    // Stop reading so the kernel buffers, then uWS's own buffer, fill up.
    (client.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const chunk = { type: 'frame', pad: 'x'.repeat(64 * 1024) };
    let sent = 0;
    while (serverSession!.send(chunk) && sent < 2_000) {
      sent += 1;
    }
    expect(sent).toBeLessThan(2_000);
    expect(serverSession!.closed).toBe(true);
    expect(serverSession!.send({ type: 'late' })).toBe(false);
    (client.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    const { code } = await client.closed;
    expect([1013, 1006]).toContain(code);
  });

  it('close() sends shutdown, closes sockets with 1001 and releases the port', async () => {
    const sessions: WsSession<unknown>[] = [];
    const app = await startServer((server) => {
      server.websocket('/v1/play', {
        upgrade: () => ({}),
        open(session) {
          sessions.push(session);
          session.send({ type: 'hello' });
        },
        message() {},
      });
    });
    const clients = await Promise.all([connect(`${app.wsBase}/v1/play`), connect(`${app.wsBase}/v1/play`)]);
    for (const client of clients) await client.next();
    await app.server.close();
    for (const client of clients) {
      expect(await client.next()).toEqual({ type: 'shutdown' });
      expect(await client.closed).toEqual({ code: 1001, reason: 'going away' });
    }
    expect(app.server.connections).toBe(0);
    expect(sessions.map((session) => [session.closed, session.send({ type: 'late' })])).toEqual([
      [true, false],
      [true, false],
    ]);
    await expect(fetch(`${app.base}/v1/play`)).rejects.toThrow();
    // The port is free again: a new server can bind it.
    const reuse = new HttpServer({
      host: '127.0.0.1',
      port: app.port,
      logger: pino({ level: 'silent' }),
      limits: defaultLimits,
    });
    expect(await reuse.listen()).toBe(app.port);
    await reuse.close();
  });
});
