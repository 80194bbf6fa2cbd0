import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { VcaError } from '../../src/errors.js';
import { expectProblem } from '../support/fleet-snapshot.js';
import { idleTelemetry, startTestGateway, type TestGateway, testCredentials } from '../support/gateway.js';
import { callAs } from '../support/http-call.js';
import { connectionRefused, rawRequest } from '../support/raw-http.js';

const adminLimits = {
  adminMaxHeaderBytes: 8 * 1024,
  adminMaxBodyBytes: 2 * 1024,
  adminHeadersTimeoutSeconds: 1,
};

function testServer(extra: Record<string, unknown> = {}) {
  return {
    host: '127.0.0.1',
    port: 0,
    requestsPerSecondPerAddress: 100_000,
    requestBurst: 100_000,
    adminPort: 0,
    ...adminLimits,
    ...extra,
  };
}

let gw: TestGateway;
let adminPort: number;
let admin: (
  role: 'gamer' | 'operator' | 'none',
  method: string,
  path: string,
  body?: unknown,
) => ReturnType<typeof callAs>;

beforeAll(async () => {
  gw = await startTestGateway({ server: testServer() });
  adminPort = gw.gateway.adminPort!;
  admin = (role, method, path, body) =>
    callAs(`http://127.0.0.1:${adminPort}`, testCredentials, role, method, path, body);
});
afterAll(async () => gw?.close());

describe('admin listener: what health checkers send', () => {
  it('listens on its own port, apart from the data plane', () => {
    expect(adminPort).toBeGreaterThan(0);
    expect(adminPort).not.toBe(gw.gateway.port);
  });

  it('answers `GET /healthz HTTP/1.0` with 200 and closes the connection', async () => {
    const answer = await rawRequest(adminPort, 'GET /healthz HTTP/1.0\r\n\r\n');
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ status: 'ok' });
    expect(answer.closedByServer).toBe(true);
    expect(answer.elapsedMs).toBeLessThan(1_000);
  });

  it('answers `GET /readyz HTTP/1.0` with a Host header, as `option httpchk GET /readyz` sends it', async () => {
    const answer = await rawRequest(adminPort, 'GET /readyz HTTP/1.0\r\nHost: vca\r\n\r\n');
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ status: 'ready', ready: true });
    expect(answer.closedByServer).toBe(true);
  });

  it('answers HEAD /readyz with the status and no body', async () => {
    const answer = await rawRequest(
      adminPort,
      'HEAD /readyz HTTP/1.1\r\nHost: vca\r\nConnection: close\r\n\r\n',
    );
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toBe('');
  });

  it('accepts a header name with an underscore', async () => {
    const answer = await rawRequest(
      adminPort,
      'GET /healthz HTTP/1.1\r\nHost: vca\r\nX_Forwarded_Check: 1\r\nConnection: close\r\n\r\n',
    );
    expect(answer.status, answer.text).toBe(200);
  });

  it('accepts a request with 60 header fields', async () => {
    const fields = Array.from({ length: 58 }, (_, i) => `X-Field-${i}: value-${i}\r\n`).join('');
    const answer = await rawRequest(
      adminPort,
      `GET /healthz HTTP/1.1\r\nHost: vca\r\n${fields}Connection: close\r\n\r\n`,
    );
    expect(answer.status, answer.text).toBe(200);
  });

  it('accepts a head just under its limit, whole or split across TCP segments', async () => {
    const head = `GET /healthz HTTP/1.1\r\nHost: vca\r\nX-Padding: ${'p'.repeat(7 * 1024)}\r\nConnection: close\r\n\r\n`;
    expect((await rawRequest(adminPort, head)).status).toBe(200);
    const split = [head.slice(0, 100), head.slice(100, 4_200), head.slice(4_200)];
    const answer = await rawRequest(adminPort, split);
    expect(answer.status, answer.text).toBe(200);
  });

  it('answers a head over its limit with 431, whole or split across TCP segments', async () => {
    const head = `GET /healthz HTTP/1.1\r\nHost: vca\r\nX-Padding: ${'p'.repeat(12 * 1024)}\r\n\r\n`;
    const whole = await rawRequest(adminPort, head);
    expect(whole.status, whole.text).toBe(431);
    expect(whole.closedByServer).toBe(true);
    const split = await rawRequest(adminPort, [
      head.slice(0, 3_000),
      head.slice(3_000, 9_000),
      head.slice(9_000),
    ]);
    expect(split.status, split.text).toBe(431);
  });

  it('answers a malformed request with 400 and closes', async () => {
    for (const garbage of [
      'HELLO THERE\r\n\r\n',
      'GET /healthz HTTP/9.9\r\n\r\n',
      '\u0001\u0002\u0003\r\n\r\n',
    ]) {
      const answer = await rawRequest(adminPort, garbage);
      expect(answer.status, `${JSON.stringify(garbage)}: ${answer.text}`).toBe(400);
      expect(answer.closedByServer).toBe(true);
    }
  });

  it('answers 408 and closes when a head does not arrive within the headers timeout', async () => {
    const answer = await rawRequest(adminPort, 'GET /healthz HTTP/1.1\r\nHost: vca\r\n', { waitMs: 5_000 });
    expect(answer.status, answer.text).toBe(408);
    expect(answer.closedByServer).toBe(true);
    expect(answer.elapsedMs).toBeGreaterThanOrEqual(900);
  });

  it('answers an unknown path 404 and a data-plane route 404: only the admin routes are served', async () => {
    expectProblem(await admin('none', 'GET', '/nope'), 404, 'VCA_ERR_ROUTE_NOT_FOUND');
    expectProblem(await admin('gamer', 'GET', '/v1/catalog'), 404, 'VCA_ERR_ROUTE_NOT_FOUND');
    expectProblem(await admin('operator', 'DELETE', '/v1/nodes'), 405, 'VCA_ERR_METHOD_NOT_ALLOWED');
  });
});

describe('admin listener: the operator API, with the same routes and the same auth', () => {
  it('serves GET /v1/nodes with the operator token and the same answer as the data plane', async () => {
    // Ready, with a session on it: a drain then keeps it draining until undrained.
    const node = await gw.registerNode('render-admin', 'L4', 1);
    expect((await gw.telemetry('render-admin', node.token, idleTelemetry(1))).status).toBe(200);
    const session = await gw.request('gamer', 'POST', '/v1/sessions', {
      game: 'unigine-heaven',
      resolution: '1080p',
      fps: 60,
      wait: false,
    });
    expect(session.status).toBe(201);
    const viaAdmin = await admin('operator', 'GET', '/v1/nodes');
    expect(viaAdmin.status).toBe(200);
    const viaDataPlane = await gw.request('operator', 'GET', '/v1/nodes');
    expect(viaAdmin.body).toEqual(viaDataPlane.body);
    expect(viaAdmin.body.nodes.map((node: any) => node.id)).toContain('render-admin');
  });

  it('refuses the operator API without a token (401) and with a gamer token (403)', async () => {
    expectProblem(await admin('none', 'GET', '/v1/nodes'), 401, 'VCA_ERR_UNAUTHORIZED');
    expectProblem(await admin('none', 'GET', '/v1/cluster'), 401, 'VCA_ERR_UNAUTHORIZED');
    expectProblem(await admin('gamer', 'GET', '/v1/nodes'), 403, 'VCA_ERR_FORBIDDEN');
  });

  it('reads JSON bodies through the same pipeline: validation, drain and undrain', async () => {
    expectProblem(
      await admin('operator', 'POST', '/v1/nodes/render-admin/drain', { deadlineSeconds: -5 }),
      400,
      'VCA_ERR_VALIDATION',
    );
    expectProblem(
      await admin('operator', 'POST', '/v1/nodes/render-admin/drain', 'not json'),
      415,
      'VCA_ERR_UNSUPPORTED_MEDIA_TYPE',
    );
    const drained = await admin('operator', 'POST', '/v1/nodes/render-admin/drain', { deadlineSeconds: 600 });
    expect(drained.status, JSON.stringify(drained.body)).toBe(200);
    expect((await gw.request('operator', 'GET', '/v1/nodes/render-admin')).body.state).toBe('draining');
    const undrained = await admin('operator', 'POST', '/v1/nodes/render-admin/undrain');
    expect(undrained.status, JSON.stringify(undrained.body)).toBe(200);
    expect((await gw.request('operator', 'GET', '/v1/nodes/render-admin')).body.state).toBe('ready');
    expectProblem(
      await admin('operator', 'POST', '/v1/nodes/render-404/drain'),
      404,
      'VCA_ERR_NODE_NOT_FOUND',
    );
  });

  it('answers a body over its limit with 413 and closes the connection', async () => {
    const body = JSON.stringify({ deadlineSeconds: 1, padding: 'x'.repeat(4 * 1024) });
    const declared = await rawRequest(
      adminPort,
      `POST /v1/nodes/render-admin/drain HTTP/1.1\r\nHost: vca\r\nAuthorization: Bearer ${testCredentials.operatorToken}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(declared.status, declared.text).toBe(413);
    expect(declared.closedByServer).toBe(true);
    const chunk = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n`;
    const chunked = await rawRequest(adminPort, [
      `POST /v1/nodes/render-admin/drain HTTP/1.1\r\nHost: vca\r\nAuthorization: Bearer ${testCredentials.operatorToken}\r\n` +
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      chunk(body.slice(0, 2_000)),
      chunk(body.slice(2_000)),
      '0\r\n\r\n',
    ]);
    expect(chunked.status, chunked.text).toBe(413);
    expect(chunked.closedByServer).toBe(true);
  });

  it('guards /metrics with the operator token unless auth.publicMetrics', async () => {
    expectProblem(await admin('none', 'GET', '/metrics'), 401, 'VCA_ERR_UNAUTHORIZED');
    const scraped = await admin('operator', 'GET', '/metrics');
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(scraped.body).toContain('vca_');

    const open = await startTestGateway({
      server: testServer(),
      auth: {
        gamerTokens: [testCredentials.gamerToken],
        operatorTokens: [testCredentials.operatorToken],
        orchestratorSecret: testCredentials.orchestratorSecret,
        masterSecret: testCredentials.masterSecret,
        publicMetrics: true,
      },
    });
    try {
      const answer = await rawRequest(open.gateway.adminPort!, 'GET /metrics HTTP/1.0\r\n\r\n');
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body).toContain('vca_');
    } finally {
      await open.close();
    }
  });
});

describe('admin listener: readiness, configuration and lifetime', () => {
  it('/readyz follows the store: 503 while it does not answer, 200 again once it does', async () => {
    const ping = vi
      .spyOn(gw.gateway.vca.store, 'ping')
      .mockRejectedValue(new VcaError('VCA_ERR_STORE_UNAVAILABLE', 'redis is down'));
    try {
      const down = await rawRequest(adminPort, 'GET /readyz HTTP/1.0\r\n\r\n');
      expect(down.status, down.text).toBe(503);
      expect(JSON.parse(down.body)).toMatchObject({
        status: 'not-ready',
        ready: false,
        reason: 'redis is down',
      });
    } finally {
      ping.mockRestore();
    }
    expect((await rawRequest(adminPort, 'GET /readyz HTTP/1.0\r\n\r\n')).status).toBe(200);
  });

  it('is off unless server.adminPort is set; VCA_ADMIN_PORT and VCA_ADMIN_HOST set it', async () => {
    const defaults = loadConfig({ env: {} });
    expect(defaults.server.adminPort).toBe(-1);
    expect(defaults.server.adminHost).toBe('');
    const fromEnv = loadConfig({ env: { VCA_ADMIN_PORT: '9091', VCA_ADMIN_HOST: '10.0.0.5' } });
    expect(fromEnv.server).toMatchObject({ adminPort: 9091, adminHost: '10.0.0.5' });
    expect(() => loadConfig({ env: { VCA_ADMIN_PORT: '70000' } })).toThrow(/server\.adminPort/);

    const plain = await startTestGateway();
    try {
      expect(plain.gateway.admin).toBeUndefined();
      expect(plain.gateway.adminPort).toBeUndefined();
      expect((await fetch(`${plain.url}/healthz`)).status).toBe(200);
    } finally {
      await plain.close();
    }
  });

  it('closes with the gateway: the port refuses connections once stopped', async () => {
    const other = await startTestGateway({ server: testServer() });
    const port = other.gateway.adminPort!;
    const idle = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: vca\r\n\r\n', { waitMs: 200 });
    expect(idle.status).toBe(200);
    expect(idle.closedByServer).toBe(false);
    await other.close();
    expect(await connectionRefused(port)).toBe(true);
  });
});
