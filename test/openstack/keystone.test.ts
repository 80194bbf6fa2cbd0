/**
 * Specification of the Keystone v3 client against a recording HTTP double on 127.0.0.1: application
 * credential authentication, the cached token and its renewal (fake clock), the catalog, one retry on
 * 401, token validation and its cache, and every failure path (down, 401, 5xx, malformed answers).
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../kit/free-port.js';
import { loadConfig } from '../../src/config/load-config.js';
import { isVcaError } from '../../src/errors.js';
import {
  KeystoneClient,
  type KeystoneClientOptions,
  keystoneOptionsFromConfig,
} from '../../src/openstack/index.js';
import { KeystoneDouble } from './keystone-double.js';

const secret = 'app-cred-secret-value';
const expiry = Date.parse('2030-01-01T12:00:00Z');

let keystone: KeystoneDouble;
let now: number;
const clock = { now: () => now };

function client(options: Partial<KeystoneClientOptions> = {}): KeystoneClient {
  return new KeystoneClient({
    url: keystone.url,
    credential: { id: 'app-cred-id', secret },
    clock,
    renewBeforeSeconds: 300,
    timeoutMs: 2000,
    ...options,
  });
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (isVcaError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a failure');
}

beforeEach(async () => {
  keystone = new KeystoneDouble();
  await keystone.start();
  now = expiry - 3600_000;
});

afterEach(async () => {
  await keystone.stop();
});

describe('keystone: service token from an application credential', () => {
  it('authenticates with the application_credential method (by id) and returns X-Subject-Token', async () => {
    const token = await client().token();
    expect(token).toBe('gAAAAservice-token-1');
    const [call] = keystone.callsTo('POST', '/v3/auth/tokens');
    expect(call!.headers['content-type']).toBe('application/json');
    expect(call!.body).toEqual({
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: { id: 'app-cred-id', secret },
        },
      },
    });
  });

  it('authenticates by credential name with its user', async () => {
    keystone.credentials.set('vca-gateway', 'named-secret');
    const named = client({
      credential: {
        name: 'vca-gateway',
        secret: 'named-secret',
        user: { name: 'vca', domain: { name: 'Default' } },
      },
    });
    expect(await named.token()).toBe('gAAAAservice-token-1');
    expect(keystone.calls[0]!.body.auth.identity.application_credential).toEqual({
      name: 'vca-gateway',
      user: { name: 'vca', domain: { name: 'Default' } },
      secret: 'named-secret',
    });
  });

  it('accepts the Identity URL with or without /v3 and a trailing slash', async () => {
    const bare = keystone.url.replace(/\/v3$/, '/');
    expect(await client({ url: bare }).token()).toBe('gAAAAservice-token-1');
    expect(keystone.calls[0]!.path).toBe('/v3/auth/tokens');
  });

  it('reuses the cached token, and concurrent callers share one authentication', async () => {
    const vca = client();
    const tokens = await Promise.all([vca.token(), vca.token(), vca.token()]);
    expect(new Set(tokens)).toEqual(new Set(['gAAAAservice-token-1']));
    now += 1000;
    expect(await vca.token()).toBe('gAAAAservice-token-1');
    expect(keystone.callsTo('POST', '/v3/auth/tokens')).toHaveLength(1);
  });

  it('renews the token once less than renewBeforeSeconds is left, not before', async () => {
    const vca = client({ renewBeforeSeconds: 300 });
    await vca.token();
    now = expiry - 301_000;
    expect(await vca.token()).toBe('gAAAAservice-token-1');
    now = expiry - 300_000;
    expect(await vca.token()).toBe('gAAAAservice-token-2');
    expect(keystone.callsTo('POST', '/v3/auth/tokens')).toHaveLength(2);
  });

  it('invalidate() makes the next call authenticate again', async () => {
    const vca = client();
    await vca.token();
    vca.invalidate();
    expect(await vca.token()).toBe('gAAAAservice-token-2');
  });
});

describe('keystone: failures', () => {
  it('Keystone down: VCA_ERR_IDENTITY_UNAVAILABLE, and a later call tries again', async () => {
    const port = await freePort();
    const down = client({ url: `http://127.0.0.1:${port}/v3` });
    const refused = await failure(down.token());
    expect(refused.code).toBe('VCA_ERR_IDENTITY_UNAVAILABLE');
    expect(refused.message).toMatch(/unreachable/);
    expect(refused.message).not.toContain(secret);
  });

  it('401 on authentication: says to check the credential, never shows the secret', async () => {
    keystone.authBehaviour = 'unauthorized';
    const refused = await failure(client().token());
    expect(refused.code).toBe('VCA_ERR_IDENTITY_UNAVAILABLE');
    expect(refused.message).toMatch(/HTTP 401.*application credential/);
    expect(refused.message).not.toContain(secret);
  });

  it('a wrong secret is refused by Keystone (401) and not retried in a loop', async () => {
    const wrong = client({ credential: { id: 'app-cred-id', secret: 'not-the-secret' } });
    expect((await failure(wrong.token())).message).toMatch(/HTTP 401/);
    expect(keystone.callsTo('POST', '/v3/auth/tokens')).toHaveLength(1);
  });

  it('5xx: fails, caches nothing, and the next call succeeds once Keystone is back', async () => {
    const vca = client();
    keystone.authBehaviour = 'server-error';
    expect((await failure(vca.token())).message).toMatch(/HTTP 503/);
    keystone.authBehaviour = 'issue';
    expect(await vca.token()).toBe('gAAAAservice-token-1');
    expect(keystone.callsTo('POST', '/v3/auth/tokens')).toHaveLength(2);
  });

  it('malformed JSON or a missing X-Subject-Token: a clear failure', async () => {
    keystone.authBehaviour = 'malformed';
    expect((await failure(client().token())).message).toMatch(/not JSON/);
    keystone.authBehaviour = 'no-header';
    expect((await failure(client().token())).message).toMatch(/without X-Subject-Token/);
  });
});

describe('keystone: service catalog', () => {
  it('finds the endpoint for a service type, interface and region', async () => {
    const vca = client({ region: 'RegionOne' });
    expect(await vca.endpoint('orchestration')).toBe('http://heat.one:8004/v1/p-vca');
    expect(await vca.endpoint('orchestration', { interface: 'internal' })).toBe(
      'http://heat.internal:8004/v1/p-vca',
    );
    expect(await vca.endpoint('orchestration', { region: 'RegionTwo' })).toBe(
      'http://heat.two:8004/v1/p-vca',
    );
    expect(keystone.callsTo('POST', '/v3/auth/tokens')).toHaveLength(1);
  });

  it('names what is missing when the catalog has no such endpoint', async () => {
    const vca = client({ region: 'RegionThree' });
    expect((await failure(vca.endpoint('orchestration'))).message).toBe(
      'the Keystone catalog has no orchestration endpoint for interface public, region RegionThree',
    );
    expect((await failure(vca.endpoint('compute'))).message).toBe(
      'the Keystone catalog has no service of type compute',
    );
  });
});

describe('keystone: authorised calls', () => {
  it('sends the token in X-Auth-Token; on 401 re-authenticates and retries exactly once', async () => {
    const vca = client();
    const first = await vca.authorizedFetch(`${keystone.url}/probe`);
    expect(await first.json()).toEqual({ token: 'gAAAAservice-token-1' });
    keystone.revokeServiceTokens();
    const second = await vca.authorizedFetch(`${keystone.url}/probe`);
    expect(second.status).toBe(200);
    expect(await second.json()).toEqual({ token: 'gAAAAservice-token-2' });
    expect(keystone.calls.map((call) => `${call.method} ${call.path}`)).toEqual([
      'POST /v3/auth/tokens',
      'GET /v3/probe',
      'GET /v3/probe',
      'POST /v3/auth/tokens',
      'GET /v3/probe',
    ]);
  });

  it('a second 401 is the final answer (no loop)', async () => {
    const vca = client();
    await vca.token();
    keystone.revokeServiceTokens();
    // Every new token is revoked as soon as it is issued.
    const issue = keystone.serviceTokens.add.bind(keystone.serviceTokens);
    keystone.serviceTokens.add = (token: string) => {
      issue(token);
      keystone.serviceTokens.delete(token);
      return keystone.serviceTokens;
    };
    const answer = await vca.authorizedFetch(`${keystone.url}/probe`);
    expect(answer.status).toBe(401);
    expect(keystone.callsTo('GET', '/v3/probe')).toHaveLength(2);
  });
});

describe('keystone: validating a presented token', () => {
  const aodhToken = 'gAAAAaodh-trust-token';

  beforeEach(() => {
    keystone.subjects.set(aodhToken, {
      expiresAt: '2030-01-01T11:30:00.000000Z',
      projectId: 'p-vca',
      projectName: 'vca',
      roles: ['member', 'reader'],
      trustId: 'trust-1',
    });
  });

  it('asks GET /v3/auth/tokens?nocatalog with X-Subject-Token and its own X-Auth-Token', async () => {
    const info = await client().validate(aodhToken);
    expect(info).toEqual({
      expiresAt: Date.parse('2030-01-01T11:30:00Z'),
      user: { id: 'aodh-user', name: 'aodh' },
      project: { id: 'p-vca', name: 'vca', domainId: 'default', domainName: 'Default' },
      roles: ['member', 'reader'],
      trustId: 'trust-1',
    });
    const [call] = keystone.callsTo('GET', '/v3/auth/tokens');
    expect(call!.path).toBe('/v3/auth/tokens?nocatalog');
    expect(call!.headers['x-subject-token']).toBe(aodhToken);
    expect(call!.headers['x-auth-token']).toBe('gAAAAservice-token-1');
  });

  it('caches a valid answer for validationCacheSeconds, then asks again', async () => {
    const vca = client({ validationCacheSeconds: 60 });
    await vca.validate(aodhToken);
    now += 59_000;
    await vca.validate(aodhToken);
    expect(keystone.callsTo('GET', '/v3/auth/tokens')).toHaveLength(1);
    now += 2_000;
    await vca.validate(aodhToken);
    expect(keystone.callsTo('GET', '/v3/auth/tokens')).toHaveLength(2);
  });

  it('never caches past the token expiry', async () => {
    const vca = client({ validationCacheSeconds: 3600, renewBeforeSeconds: 0 });
    now = Date.parse('2030-01-01T11:29:50Z');
    expect(await vca.validate(aodhToken)).not.toBeNull();
    now = Date.parse('2030-01-01T11:30:01Z');
    // Keystone itself still says valid here (the double does not check time); the answer's expiry does.
    expect(await vca.validate(aodhToken)).toBeNull();
    expect(keystone.callsTo('GET', '/v3/auth/tokens')).toHaveLength(2);
  });

  it('an unknown token is null (404) and not cached', async () => {
    const vca = client();
    expect(await vca.validate('gAAAAforged')).toBeNull();
    keystone.subjects.set('gAAAAforged', { expiresAt: '2030-01-01T11:45:00Z', projectId: 'p', roles: [] });
    expect(await vca.validate('gAAAAforged')).not.toBeNull();
  });

  it('re-authenticates once when its own token was revoked', async () => {
    const vca = client();
    await vca.validate(aodhToken);
    keystone.revokeServiceTokens();
    expect(await vca.validate('gAAAAother')).toBeNull();
    expect(keystone.callsTo('POST', '/v3/auth/tokens')).toHaveLength(2);
    expect(keystone.callsTo('GET', '/v3/auth/tokens').map((call) => call.headers['x-auth-token'])).toEqual([
      'gAAAAservice-token-1',
      'gAAAAservice-token-1',
      'gAAAAservice-token-2',
    ]);
  });

  it("403 (the VCA may not validate others' tokens) is VCA_ERR_IDENTITY_UNAVAILABLE naming the role", async () => {
    keystone.validationStatus = 403;
    const refused = await failure(client().validate(aodhToken));
    expect(refused.code).toBe('VCA_ERR_IDENTITY_UNAVAILABLE');
    expect(refused.message).toMatch(/403.*service role/);
  });

  it('Keystone 5xx during validation is VCA_ERR_IDENTITY_UNAVAILABLE, not "invalid"', async () => {
    keystone.validationStatus = 500;
    expect((await failure(client().validate(aodhToken))).code).toBe('VCA_ERR_IDENTITY_UNAVAILABLE');
  });
});

describe('keystone: configuration and logs', () => {
  it('builds client options from openstack.keystone (env vars included) and logs no secret', async () => {
    const config = loadConfig({
      env: {
        VCA_KEYSTONE_URL: keystone.url,
        VCA_KEYSTONE_APPLICATION_CREDENTIAL_ID: 'app-cred-id',
        VCA_KEYSTONE_APPLICATION_CREDENTIAL_SECRET: secret,
        VCA_KEYSTONE_REGION: 'RegionOne',
        VCA_KEYSTONE_INTERFACE: 'internal',
      },
    });
    const options = keystoneOptionsFromConfig(config.openstack.keystone);
    expect(options).toMatchObject({ url: keystone.url, region: 'RegionOne', interface: 'internal' });
    const lines: string[] = [];
    const logger = pino(
      { level: 'trace' },
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const vca = new KeystoneClient({ ...options!, clock, logger });
    expect(await vca.endpoint('orchestration')).toBe('http://heat.internal:8004/v1/p-vca');
    keystone.revokeServiceTokens();
    await vca.authorizedFetch(`${keystone.url}/probe?secret=in-query`);
    keystone.authBehaviour = 'unauthorized';
    vca.invalidate();
    await failure(vca.token());
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const log = lines.join('');
    expect(log).not.toContain(secret);
    expect(log).not.toContain('gAAAAservice-token');
    expect(log).not.toContain('in-query');
  });

  it('is off without a URL, and refuses a URL without a credential, naming the key', () => {
    expect(keystoneOptionsFromConfig(loadConfig({ env: {} }).openstack.keystone)).toBeNull();
    expect(() => loadConfig({ env: { VCA_KEYSTONE_URL: 'http://keystone:5000/v3' } })).toThrow(
      /openstack\.keystone\.applicationCredentialSecret/,
    );
    expect(() =>
      loadConfig({
        env: { VCA_KEYSTONE_URL: 'http://keystone:5000/v3', VCA_KEYSTONE_APPLICATION_CREDENTIAL_SECRET: 's' },
      }),
    ).toThrow(/openstack\.keystone\.applicationCredentialId/);
    expect(() => loadConfig({ env: { VCA_KEYSTONE_URL: 'keystone:5000' } })).toThrow(
      /openstack\.keystone\.url/,
    );
    expect(() => loadConfig({ env: { VCA_KEYSTONE_INTERFACE: 'private' } })).toThrow(
      /openstack\.keystone\.interface/,
    );
  });
});
