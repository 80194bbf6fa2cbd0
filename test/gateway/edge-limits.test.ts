/**
 * Specification of the gateway's edge limits against a real gateway on port 0 with real clients: JSON
 * nesting depth on every body, bearer tokens only in headers on REST routes, a client that abandons its
 * body is its own fault (not an internal error), and the per-socket message budget of /v1/play.
 */
import net from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { expectProblem, fleetSnapshot, postHook } from '../support/fleet-snapshot.js';
import {
  idleTelemetry,
  PlayClient,
  startTestGateway,
  type TestGateway,
  testCredentials,
} from '../support/gateway.js';

interface LogLine {
  level: number;
  msg: string;
}

const errorLevel = 50;
const validSession = { game: 'unigine-heaven', resolution: '1080p', fps: 60 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The shared test gateway, with its log lines kept so a test can say what was logged. */
async function startGateway(): Promise<TestGateway & { logs: LogLine[] }> {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  return Object.assign(await startTestGateway({}, logger), { logs });
}

/** The value of one series of a counter in the gateway's registry (0 when it has none yet). */
async function counterValue(gw: TestGateway, name: string, labels: Record<string, string> = {}) {
  const metric = gw.gateway.metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const series = values.find((value) =>
    Object.entries(labels).every(([key, label]) => value.labels[key] === label),
  );
  return series?.value ?? 0;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('edge limits', () => {
  let gw: TestGateway & { logs: LogLine[] };
  let nodeToken: string;

  beforeAll(async () => {
    gw = await startGateway();
    nodeToken = (await gw.registerNode('edge-1', 'L4', 2)).token;
    expect((await gw.telemetry('edge-1', nodeToken, idleTelemetry(2))).status).toBe(200);
  });
  afterAll(async () => gw?.close());

  describe('JSON nesting depth', () => {
    const deepArray = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

    it('refuses an 8,000-deep `capacity` on the notification hook with 400 before any parser runs', async () => {
      const before = await fleetSnapshot(gw);
      const raw = JSON.stringify({
        event_type: 'orchestration.autoscaling.end',
        message_id: 'deep-1',
        payload: { capacity: '@@' },
      }).replace('"@@"', deepArray(8_000));
      const response = await postHook(gw, 'notifications', raw);
      expectProblem(response, 400, 'VCA_ERR_VALIDATION');
      expect(response.body).toMatchObject({ maxDepth: 64 });
      expect(response.body.detail).toMatch(/more than 64 levels/);
      expect(await fleetSnapshot(gw)).toEqual(before);
    });

    it('refuses it on a gamer route and on a signed hook alike', async () => {
      const session = await gw.request('gamer', 'POST', '/v1/sessions', `{"game":${deepArray(1_000)}}`, {
        'content-type': 'application/json',
      });
      expectProblem(session, 400, 'VCA_ERR_VALIDATION');
      const signed = await postHook(gw, 'contextualize', `{"nodes":${deepArray(5_000)}}`);
      expectProblem(signed, 400, 'VCA_ERR_VALIDATION');
    });
  });

  describe('bearer tokens in the query string', () => {
    it.each([
      ['gamer', 'GET', '/v1/catalog'],
      ['gamer', 'POST', '/v1/sessions'],
      ['operator', 'GET', '/v1/nodes'],
      ['operator', 'GET', '/v1/cluster'],
      ['operator', 'GET', '/metrics'],
    ] as const)('%s token as ?token= on %s %s -> 401', async (role, method, path) => {
      const token = role === 'gamer' ? testCredentials.gamerToken : testCredentials.operatorToken;
      const response = await gw.request(
        'none',
        method,
        `${path}?token=${encodeURIComponent(token)}`,
        method === 'POST' ? validSession : undefined,
      );
      expectProblem(response, 401, 'VCA_ERR_UNAUTHORIZED');
      // The same token in the header is accepted.
      const withHeader = await gw.request(role, 'GET', path === '/v1/sessions' ? '/v1/catalog' : path);
      expect(withHeader.status).toBe(200);
    });

    it("a node's token as ?token= on its telemetry route -> 401", async () => {
      const response = await gw.request(
        'none',
        'PUT',
        `/v1/nodes/edge-1/telemetry?token=${encodeURIComponent(nodeToken)}`,
        { gpus: idleTelemetry(2) },
      );
      expectProblem(response, 401, 'VCA_ERR_UNAUTHORIZED');
    });

    it('the /v1/play upgrade still takes ?token=', async () => {
      const client = await PlayClient.connect(gw.wsUrl);
      expect(client.socket.readyState).toBe(WebSocket.OPEN);
      await client.close();
    });
  });

  describe('a client that abandons its body', () => {
    it('is counted as an abort, not VCA_ERR_INTERNAL, and logs no error', async () => {
      const abortedBefore = await counterValue(gw, 'vca_http_aborted_requests_total');
      const errorLinesBefore = gw.logs.filter((line) => line.level >= errorLevel).length;
      const body = JSON.stringify(validSession);
      const socket = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      socket.write(
        'POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
          `Authorization: Bearer ${testCredentials.gamerToken}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n` +
          body.slice(0, body.length / 2),
      );
      await sleep(50);
      socket.destroy();
      await waitFor(async () => (await counterValue(gw, 'vca_http_aborted_requests_total')) > abortedBefore);
      expect(await counterValue(gw, 'vca_http_aborted_requests_total')).toBe(abortedBefore + 1);
      expect(await counterValue(gw, 'vca_http_errors_total', { code: 'VCA_ERR_INTERNAL' })).toBe(0);
      expect(gw.logs.filter((line) => line.level >= errorLevel).slice(errorLinesBefore)).toEqual([]);
      expect(gw.logs.some((line) => line.msg === 'route failed')).toBe(false);
      // The gateway keeps serving.
      expect((await gw.request('gamer', 'GET', '/v1/catalog')).status).toBe(200);
    });
  });

  describe('/v1/play message budget', () => {
    it('closes a flooding socket with 1008, counts it, and the gamer beside it keeps playing', async () => {
      const cutBefore = await counterValue(gw, 'vca_websocket_closed_total', { reason: 'message-rate' });
      const gamer = await PlayClient.connect(gw.wsUrl);
      const flood = await PlayClient.connect(gw.wsUrl);
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        flood.socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      for (let i = 0; i < 20_000 && flood.socket.readyState === WebSocket.OPEN; i += 1) {
        flood.socket.send('x');
        // Let the close frame in now and then, as a real flood would between writes.
        if (i % 1_000 === 999) await sleep(1);
      }
      expect(await closed).toEqual({ code: 1008, reason: 'message rate over 20/s (burst 50)' });
      expect(await counterValue(gw, 'vca_websocket_closed_total', { reason: 'message-rate' })).toBe(
        cutBefore + 1,
      );
      gamer.send({ type: 'request', ...validSession });
      const assigned = await gamer.next('assigned');
      expect(assigned.node.id).toBe('edge-1');
      gamer.send({ type: 'end' });
      expect(await gamer.next('ended')).toMatchObject({ sessionId: assigned.sessionId });
      await gamer.close();
    });
  });
});
