/**
 * The Aodh hook on a real gateway (port 0, real HTTP): bodies with every field null as Aodh sends
 * them, re-notifications held by the cooldown, and the three ways an alarm action authenticates — a
 * Keystone token in X-Auth-Token (Aodh `trust+http`), validated against a Keystone double on
 * 127.0.0.1 that records every call; a per-alarm path token; the hook secret, whose `?secret=` form
 * can be turned off. A refused delivery changes nothing; no log line carries a secret.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alarmPathToken } from '../../src/http/alarm-credentials.js';
import { KeystoneDouble } from '../openstack/keystone-double.js';
import { idleTelemetry, startTestGateway, type TestGateway, testCredentials } from '../support/gateway.js';

const appSecret = 'app-cred-secret-value';
const aodhToken = 'gAAAAaodh-trust-token-0123456789';

let keystone: KeystoneDouble;
let gw: TestGateway | undefined;
const logLines: string[] = [];

beforeAll(async () => {
  keystone = new KeystoneDouble();
  await keystone.start();
});

afterAll(async () => {
  await keystone.stop();
});

afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

function capturingLogger() {
  logLines.length = 0;
  return pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
}

async function start(aodh: Record<string, unknown> = {}, withKeystone = true): Promise<TestGateway> {
  gw = await startTestGateway(
    {
      hooks: { aodh },
      ...(withKeystone
        ? {
            openstack: {
              keystone: {
                url: keystone.url,
                applicationCredentialId: 'app-cred-id',
                applicationCredentialSecret: appSecret,
              },
            },
          }
        : {}),
    },
    capturingLogger(),
  );
  return gw;
}

function alarm(overrides: Record<string, unknown> = {}) {
  return {
    alarm_name: null,
    alarm_id: 'b1c2d3e4-0000-4000-8000-00000000a1a1',
    severity: null,
    previous: 'ok',
    current: 'alarm',
    reason: 'Transition to alarm due to 3 samples outside threshold, most recent: 8.0',
    reason_data: { type: 'threshold', disposition: 'outside', count: 3, most_recent: 8.0 },
    ...overrides,
  };
}

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return gw!.request('none', 'POST', path, JSON.stringify(body), {
    'content-type': 'application/json',
    ...headers,
  });
}

async function readyNodes(ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    const { token } = await gw!.registerNode(id, 'L4');
    await gw!.telemetry(id, token, idleTelemetry(1));
  }
}

async function readyCount(): Promise<number> {
  const answer = await gw!.request('operator', 'GET', '/v1/nodes');
  return answer.body.nodes.filter((node: { state: string }) => node.state === 'ready').length;
}

describe('aodh hook: bodies as Aodh sends them', () => {
  it('takes alarm_name, severity and reason_data null (200, drains one node)', async () => {
    await start({}, false);
    await readyNodes(['n1', 'n2']);
    const answer = await post('/v1/hooks/aodh?action=DOWN', alarm({ reason_data: null }), {
      'x-vca-hook-secret': testCredentials.orchestratorSecret,
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toMatchObject({ action: 'drain-count', replayed: false, error: null });
    expect(await readyCount()).toBe(1);
  });

  it('holds a re-notification within the cooldown: answered as replayed, nothing drained', async () => {
    await start({ repeatCooldownSeconds: 300 }, false);
    await readyNodes(['n1', 'n2', 'n3']);
    const secret = { 'x-vca-hook-secret': testCredentials.orchestratorSecret };
    expect((await post('/v1/hooks/aodh?action=DOWN', alarm(), secret)).body.replayed).toBe(false);
    const repeat = (mostRecent: number) =>
      alarm({
        previous: 'alarm',
        reason: `Remaining as alarm due to 3 samples outside threshold, most recent: ${mostRecent}`,
      });
    expect((await post('/v1/hooks/aodh?action=DOWN', repeat(7), secret)).body.replayed).toBe(true);
    expect((await post('/v1/hooks/aodh?action=DOWN', repeat(6), secret)).body.replayed).toBe(true);
    expect(await readyCount()).toBe(2);
    gw!.clock.advance(300_000);
    const after = await post('/v1/hooks/aodh?action=DOWN', repeat(5), secret);
    expect(after.body).toMatchObject({ replayed: false, action: 'drain-count', shortfall: 0 });
    expect(after.body.draining).toHaveLength(1);
  });
});

describe('aodh hook: Keystone tokens (trust+http)', () => {
  beforeAll(() => {
    keystone.subjects.set(aodhToken, {
      expiresAt: '2099-01-01T00:00:00Z',
      projectId: 'p-vca',
      roles: ['member'],
      trustId: 'trust-7',
    });
    keystone.subjects.set('gAAAAother-project', {
      expiresAt: '2099-01-01T00:00:00Z',
      projectId: 'p-else',
      roles: ['member'],
    });
    keystone.subjects.set('gAAAAreader-only', {
      expiresAt: '2099-01-01T00:00:00Z',
      projectId: 'p-vca',
      roles: ['reader'],
    });
  });

  it('accepts a valid token of an allowed project with the roles, no secret anywhere; validations cached', async () => {
    await start({ keystoneProjectIds: ['p-vca'], keystoneRoles: ['member'] });
    await readyNodes(['n1', 'n2', 'n3']);
    const before = keystone.callsTo('GET', '/v3/auth/tokens').length;
    const first = await post('/v1/hooks/aodh?action=DOWN', alarm(), { 'x-auth-token': aodhToken });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ action: 'drain-count', error: null });
    const second = await post('/v1/hooks/aodh?action=DOWN', alarm({ reason: 'another evaluation' }), {
      'x-auth-token': aodhToken,
    });
    expect(second.status).toBe(200);
    expect(await readyCount()).toBe(1);
    // One validation for both deliveries, sent with the VCA's own token.
    const validations = keystone.callsTo('GET', '/v3/auth/tokens').slice(before);
    expect(validations).toHaveLength(1);
    expect(validations[0]!.headers['x-subject-token']).toBe(aodhToken);
    expect(validations[0]!.headers['x-auth-token']).toMatch(/^gAAAAservice-token-/);
    const log = logLines.join('');
    expect(log).not.toContain(appSecret);
    expect(log).not.toContain(aodhToken);
  });

  it.each([
    ['gAAAAunknown', 401, 'VCA_ERR_UNAUTHORIZED', /invalid, expired or revoked/],
    ['gAAAAother-project', 403, 'VCA_ERR_FORBIDDEN', /project p-else/],
    ['gAAAAreader-only', 403, 'VCA_ERR_FORBIDDEN', /lacks the role\(s\) member/],
  ])('refuses %s with %i and changes nothing', async (token, status, code, detail) => {
    await start({ keystoneProjectIds: ['p-vca'], keystoneRoles: ['member'] });
    await readyNodes(['n1']);
    const answer = await post('/v1/hooks/aodh?action=DOWN', alarm(), { 'x-auth-token': token });
    expect(answer.status).toBe(status);
    expect(answer.body.code).toBe(code);
    expect(answer.body.detail).toMatch(detail);
    expect(await readyCount()).toBe(1);
  });

  it('Keystone down: 503 VCA_ERR_IDENTITY_UNAVAILABLE, nothing drained', async () => {
    await start({ keystoneProjectIds: ['p-vca'] });
    await readyNodes(['n1']);
    keystone.authBehaviour = 'server-error';
    try {
      const answer = await post('/v1/hooks/aodh?action=DOWN', alarm({ reason: 'while keystone is down' }), {
        'x-auth-token': 'gAAAAnot-cached-yet',
      });
      expect(answer.status).toBe(503);
      expect(answer.body.code).toBe('VCA_ERR_IDENTITY_UNAVAILABLE');
    } finally {
      keystone.authBehaviour = 'issue';
    }
    expect(await readyCount()).toBe(1);
  });

  it('without keystoneProjectIds, or without Keystone, a token is refused with what to configure', async () => {
    await start({});
    let answer = await post('/v1/hooks/aodh', alarm(), { 'x-auth-token': aodhToken });
    expect(answer.status).toBe(401);
    expect(answer.body.detail).toMatch(/hooks\.aodh\.keystoneProjectIds/);
    await gw!.close();
    await start({}, false);
    answer = await post('/v1/hooks/aodh', alarm(), { 'x-auth-token': aodhToken });
    expect(answer.status).toBe(401);
    expect(answer.body.detail).toMatch(/openstack\.keystone\.url/);
  });
});

describe('aodh hook: the hook secret and per-alarm path tokens', () => {
  it('?secret= can be turned off; the header still works', async () => {
    await start({ allowQuerySecret: false }, false);
    const query = await post(
      `/v1/hooks/aodh?secret=${testCredentials.orchestratorSecret}`,
      alarm({ current: 'ok' }),
    );
    expect(query.status).toBe(401);
    expect(query.body.detail).toMatch(/allowQuerySecret/);
    const header = await post('/v1/hooks/aodh', alarm({ current: 'ok' }), {
      'x-vca-hook-secret': testCredentials.orchestratorSecret,
    });
    expect(header.status).toBe(200);
  });

  it('a path token speaks for its alarm and direction only', async () => {
    await start({}, false);
    await readyNodes(['n1', 'n2']);
    const body = alarm();
    const token = alarmPathToken(testCredentials.orchestratorSecret, body.alarm_id, 'down');
    const wrongAlarm = await post(`/v1/hooks/aodh/${token}?action=DOWN`, {
      ...body,
      alarm_id: 'another-alarm',
    });
    expect(wrongAlarm.status).toBe(401);
    const upToken = alarmPathToken(testCredentials.orchestratorSecret, body.alarm_id, 'up');
    const wrongDirection = await post(`/v1/hooks/aodh/${upToken}?action=DOWN`, body);
    expect(wrongDirection.status).toBe(401);
    const garbage = await post('/v1/hooks/aodh/a1.not-a-token?action=DOWN', body);
    expect(garbage.status).toBe(401);
    expect(await readyCount()).toBe(2);
    const right = await post(`/v1/hooks/aodh/${token}?action=DOWN`, body);
    expect(right.status, JSON.stringify(right.body)).toBe(200);
    expect(right.body).toMatchObject({ action: 'drain-count', replayed: false });
    expect(await readyCount()).toBe(1);
  });
});
