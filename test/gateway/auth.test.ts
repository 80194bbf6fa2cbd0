import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { signBody } from '../../src/http/credentials.js';
import { expectProblem, fleetSnapshot, postHook } from '../support/fleet-snapshot.js';
import {
  idleTelemetry,
  PlayClient,
  startTestGateway,
  type TestGateway,
  testCredentials,
} from '../support/gateway.js';

const fixtureDir = path.resolve(import.meta.dirname, '../fixtures/webhooks');
const fixtureText = (name: string) => readFileSync(path.join(fixtureDir, name), 'utf8');

const sessionBody = { game: 'unigine-heaven', resolution: '1080p', fps: 60 };
const gamerRoutes: Array<[string, string, unknown?]> = [
  ['POST', '/v1/sessions', sessionBody],
  ['GET', '/v1/sessions/s-1'],
  ['DELETE', '/v1/sessions/s-1'],
  ['POST', '/v1/sessions/s-1/heartbeat'],
  ['GET', '/v1/catalog'],
];
const operatorRoutes: Array<[string, string, unknown?]> = [
  ['GET', '/v1/nodes'],
  ['GET', '/v1/nodes/render-1'],
  ['POST', '/v1/nodes/render-1/drain', { deadlineSeconds: 60 }],
  ['POST', '/v1/nodes/render-1/undrain'],
  ['GET', '/v1/cluster'],
];

/** Upgrades to /v1/play and reports the HTTP status of a refusal (or 101 when accepted). */
function upgradeStatus(wsUrl: string, query: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${wsUrl}/v1/play${query}`, { headers });
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      response.resume();
    });
    socket.once('error', reject);
  });
}

describe('auth: roles', () => {
  let gw: TestGateway;
  let nodeToken: string;
  let otherNodeToken: string;
  beforeAll(async () => {
    gw = await startTestGateway();
    nodeToken = (await gw.registerNode('render-1', 'L4')).token;
    otherNodeToken = (await gw.registerNode('render-2', 'L4')).token;
    await gw.telemetry('render-1', nodeToken, idleTelemetry(1));
    await gw.telemetry('render-2', otherNodeToken, idleTelemetry(1));
  });
  afterAll(async () => gw?.close());

  describe.each([
    ['gamer', gamerRoutes, 'operator'],
    ['operator', operatorRoutes, 'gamer'],
  ] as const)('%s routes', (_role, routes, otherRole) => {
    it.each(routes)(
      '%s %s: no credentials -> 401 problem+json, state unchanged',
      async (method, route, body) => {
        const before = await fleetSnapshot(gw);
        const response = await gw.request('none', method, route, body);
        expectProblem(response, 401, 'VCA_ERR_UNAUTHORIZED');
        expect(await fleetSnapshot(gw)).toEqual(before);
      },
    );

    it.each(routes)('%s %s: a wrong token -> 401', async (method, route, body) => {
      const response = await gw.request({ token: 'not-a-token-of-anyone-0123456789' }, method, route, body);
      expectProblem(response, 401, 'VCA_ERR_UNAUTHORIZED');
    });

    it.each(routes)('%s %s: a malformed Authorization header -> 401', async (method, route, body) => {
      const response = await gw.request('none', method, route, body, {
        authorization: `Basic ${Buffer.from('user:pass').toString('base64')}`,
      });
      expectProblem(response, 401, 'VCA_ERR_UNAUTHORIZED');
    });

    it.each(routes)(`%s %s: the ${otherRole} token -> 403, state unchanged`, async (method, route, body) => {
      const before = await fleetSnapshot(gw);
      const response = await gw.request(otherRole, method, route, body);
      expectProblem(response, 403, 'VCA_ERR_FORBIDDEN');
      expect(await fleetSnapshot(gw)).toEqual(before);
    });

    it.each(routes)('%s %s: a node token -> 401', async (method, route, body) => {
      const response = await gw.request({ token: nodeToken }, method, route, body);
      expectProblem(response, 401, 'VCA_ERR_UNAUTHORIZED');
    });
  });

  describe('node routes', () => {
    const telemetryBody = { gpus: idleTelemetry(1) };
    it('accept the node its own token', async () => {
      const response = await gw.request(
        { token: nodeToken },
        'PUT',
        '/v1/nodes/render-1/telemetry',
        telemetryBody,
      );
      expect(response.status).toBe(200);
    });

    it('refuse no credentials with 401', async () => {
      expectProblem(
        await gw.request('none', 'PUT', '/v1/nodes/render-1/telemetry', telemetryBody),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
      expectProblem(
        await gw.request('none', 'POST', '/v1/nodes/render-1/sessions/s-1/ended'),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
    });

    it("refuse another node's token with 401 and record nothing", async () => {
      const before = await fleetSnapshot(gw);
      expectProblem(
        await gw.request({ token: otherNodeToken }, 'PUT', '/v1/nodes/render-1/telemetry', {
          gpus: [{ index: 0, utilizationGpu: 99, temperatureGpu: 90 }],
        }),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
      expectProblem(
        await gw.request({ token: otherNodeToken }, 'POST', '/v1/nodes/render-1/sessions/s-1/ended'),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
      expect(await fleetSnapshot(gw)).toEqual(before);
    });

    it('refuse a node token for an unknown node id with 401', async () => {
      expectProblem(
        await gw.request({ token: nodeToken }, 'PUT', '/v1/nodes/render-9/telemetry', telemetryBody),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
    });

    it.each(['gamer', 'operator'] as const)('refuse the %s token with 403 (or 401)', async (role) => {
      const response = await gw.request(role, 'PUT', '/v1/nodes/render-1/telemetry', telemetryBody);
      expect([401, 403]).toContain(response.status);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(['VCA_ERR_FORBIDDEN', 'VCA_ERR_UNAUTHORIZED']).toContain(response.body.code);
    });
  });

  describe('webhook secret (aodh, notifications)', () => {
    const aodhRaw = fixtureText('aodh-threshold-alarm-gpu-temperature.json');
    const osloRaw = fixtureText('oslo-notification-autoscaling-end-scale-down.json');

    it.each([
      ['aodh', aodhRaw],
      ['notifications', osloRaw],
    ] as const)('%s: a missing secret -> 401, nothing recorded', async (kind, raw) => {
      const before = await fleetSnapshot(gw);
      const response = await gw.request('none', 'POST', `/v1/hooks/${kind}`, raw, {
        'content-type': 'application/json',
      });
      expectProblem(response, 401, 'VCA_ERR_UNAUTHORIZED');
      expect(await fleetSnapshot(gw)).toEqual(before);
    });

    it.each([
      ['aodh', aodhRaw],
      ['notifications', osloRaw],
    ] as const)('%s: a wrong secret in the header or the URL -> 401', async (kind, raw) => {
      expectProblem(
        await postHook(gw, kind, raw, { headers: { 'x-vca-hook-secret': 'wrong-secret-0123456789' } }),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
      expectProblem(
        await gw.request('none', 'POST', `/v1/hooks/${kind}?secret=wrong-secret-0123456789`, raw, {
          'content-type': 'application/json',
        }),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
      // A gamer or operator bearer token is not the orchestrator's secret either.
      expectProblem(
        await gw.request('operator', 'POST', `/v1/hooks/${kind}`, raw, {
          'content-type': 'application/json',
        }),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
    });

    it.each([
      ['aodh', aodhRaw, ''],
      ['aodh', fixtureText('ceilometer-2014-notification-alarm.json'), '&action=UP'],
      ['notifications', fixtureText('ceilometer-http-publisher-events.json'), ''],
    ] as const)('%s: ?secret= in the URL is accepted (Aodh cannot sign)', async (kind, raw, extra) => {
      const response = await gw.request(
        'none',
        'POST',
        `/v1/hooks/${kind}?secret=${encodeURIComponent(testCredentials.orchestratorSecret)}${extra}`,
        raw,
        { 'content-type': 'application/json' },
      );
      expect(response.status, JSON.stringify(response.body)).toBe(200);
    });
  });

  describe('contextualize signature', () => {
    const registration = (id: string) =>
      JSON.stringify({
        eventId: `sig-${id}`,
        event: 'scale-up',
        group: 'g',
        nodes: [{ id, host: '10.0.0.9', port: 5900, protocol: 'webrtc', gpus: [{ model: 'L4', count: 1 }] }],
      });

    async function expectRefusedAndNotRegistered(
      id: string,
      response: { status: number; body: any; headers: Headers },
    ) {
      expectProblem(response, 401, 'VCA_ERR_SIGNATURE');
      expect((await gw.request('operator', 'GET', `/v1/nodes/${id}`)).status).toBe(404);
    }

    it('a missing signature -> 401 VCA_ERR_SIGNATURE, the node is not registered', async () => {
      const response = await gw.request('none', 'POST', '/v1/hooks/contextualize', registration('sig-a'), {
        'content-type': 'application/json',
      });
      await expectRefusedAndNotRegistered('sig-a', response);
    });

    it('the hook secret instead of a signature -> 401 VCA_ERR_SIGNATURE', async () => {
      const response = await gw.request('none', 'POST', '/v1/hooks/contextualize', registration('sig-b'), {
        'content-type': 'application/json',
        'x-vca-hook-secret': testCredentials.orchestratorSecret,
      });
      await expectRefusedAndNotRegistered('sig-b', response);
    });

    it('a bad signature -> 401 VCA_ERR_SIGNATURE', async () => {
      const t = Math.floor(gw.clock.now() / 1000);
      for (const header of [
        `t=${t},v1=${'0'.repeat(64)}`,
        `t=${t},v1=${signBody('another-secret-0123456789', t, registration('sig-c'))}`,
        `t=${t}`,
        `v1=${signBody(testCredentials.orchestratorSecret, t, registration('sig-c'))}`,
        'garbage',
      ]) {
        const response = await gw.request('none', 'POST', '/v1/hooks/contextualize', registration('sig-c'), {
          'content-type': 'application/json',
          'x-vca-signature': header,
        });
        await expectRefusedAndNotRegistered('sig-c', response);
      }
    });

    it('a signature over a different body -> 401 VCA_ERR_SIGNATURE', async () => {
      const t = Math.floor(gw.clock.now() / 1000);
      const response = await gw.request('none', 'POST', '/v1/hooks/contextualize', registration('sig-d'), {
        'content-type': 'application/json',
        'x-vca-signature': `t=${t},v1=${signBody(testCredentials.orchestratorSecret, t, registration('sig-x'))}`,
      });
      await expectRefusedAndNotRegistered('sig-d', response);
    });

    it('a signature with another timestamp than the one signed -> 401 VCA_ERR_SIGNATURE', async () => {
      const t = Math.floor(gw.clock.now() / 1000);
      const response = await gw.request('none', 'POST', '/v1/hooks/contextualize', registration('sig-e'), {
        'content-type': 'application/json',
        'x-vca-signature': `t=${t + 1},v1=${signBody(testCredentials.orchestratorSecret, t, registration('sig-e'))}`,
      });
      await expectRefusedAndNotRegistered('sig-e', response);
    });

    it.each([
      ['10 minutes old', 10 * 60_000],
      ['10 minutes ahead', -10 * 60_000],
    ])('a timestamp %s -> 401 VCA_ERR_SIGNATURE', async (_label, shiftMs) => {
      const t = Math.floor(gw.clock.now() / 1000);
      gw.clock.advance(shiftMs);
      try {
        const response = await postHook(gw, 'contextualize', registration('sig-f'), { timestampSeconds: t });
        await expectRefusedAndNotRegistered('sig-f', response);
      } finally {
        gw.clock.advance(-shiftMs);
      }
    });

    it('a valid signature within the window registers the node', async () => {
      const t = Math.floor(gw.clock.now() / 1000);
      gw.clock.advance(60_000);
      try {
        const response = await postHook(gw, 'contextualize', registration('sig-g'), { timestampSeconds: t });
        expect(response.status, JSON.stringify(response.body)).toBe(200);
        expect((await gw.request('operator', 'GET', '/v1/nodes/sig-g')).status).toBe(200);
      } finally {
        gw.clock.advance(-60_000);
      }
    });
  });

  describe('WebSocket /v1/play', () => {
    it('accepts the gamer token in the query or the Authorization header', async () => {
      expect(await upgradeStatus(gw.wsUrl, `?token=${testCredentials.gamerToken}`)).toBe(101);
      expect(
        await upgradeStatus(gw.wsUrl, '', { authorization: `Bearer ${testCredentials.gamerToken}` }),
      ).toBe(101);
    });

    it('refuses an operator token (403), a node token, a wrong token and no token (401)', async () => {
      expect(await upgradeStatus(gw.wsUrl, `?token=${testCredentials.operatorToken}`)).toBe(403);
      expect(await upgradeStatus(gw.wsUrl, `?token=${encodeURIComponent(nodeToken)}`)).toBe(401);
      expect(await upgradeStatus(gw.wsUrl, '?token=wrong-token-0123456789')).toBe(401);
      expect(await upgradeStatus(gw.wsUrl, '')).toBe(401);
      await expect(PlayClient.connect(gw.wsUrl, testCredentials.operatorToken)).rejects.toThrow(/403/);
    });
  });

  describe('public and metrics routes', () => {
    it.each(['/healthz', '/readyz', '/v1/openapi.json'])('%s needs no credentials', async (route) => {
      const response = await gw.request('none', 'GET', route);
      expect(response.status).toBe(200);
    });

    it('/metrics needs the operator token', async () => {
      expectProblem(await gw.request('none', 'GET', '/metrics'), 401, 'VCA_ERR_UNAUTHORIZED');
      expectProblem(await gw.request('gamer', 'GET', '/metrics'), 403, 'VCA_ERR_FORBIDDEN');
      expectProblem(
        await gw.request({ token: 'wrong-token-0123456789' }, 'GET', '/metrics'),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
      const scraped = await gw.request('operator', 'GET', '/metrics');
      expect(scraped.status).toBe(200);
      expect(scraped.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(scraped.body).toContain('vca_nodes');
    });
  });
});

describe('auth: publicMetrics', () => {
  let gw: TestGateway;
  afterEach(async () => gw?.close());

  it('serves /metrics without a token when auth.publicMetrics is set; other operator routes stay closed', async () => {
    gw = await startTestGateway({
      auth: {
        gamerTokens: [testCredentials.gamerToken],
        operatorTokens: [testCredentials.operatorToken],
        orchestratorSecret: testCredentials.orchestratorSecret,
        masterSecret: testCredentials.masterSecret,
        publicMetrics: true,
      },
    });
    const scraped = await gw.request('none', 'GET', '/metrics');
    expect(scraped.status).toBe(200);
    expect(scraped.body).toContain('vca_nodes');
    expectProblem(await gw.request('none', 'GET', '/v1/nodes'), 401, 'VCA_ERR_UNAUTHORIZED');
    expect((await gw.request('operator', 'GET', '/metrics')).status).toBe(200);
  });
});
