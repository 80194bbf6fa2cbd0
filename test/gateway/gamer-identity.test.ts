/**
 * Gamer identity: with `auth.gamerJwt`, a JWT the operator's platform signs for one gamer is a gamer
 * credential. Its sessions belong to its `sub` — another gamer's token finds nothing there (404, the
 * same answer as an unknown session) — and one gamer holds at most `auth.maxSessionsPerGamer` live
 * sessions. Tokens are signed here with real keys; static gamer tokens keep working for front-ends.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importSPKI,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem, fleetSnapshot } from '../support/fleet-snapshot.js';
import {
  idleTelemetry,
  PlayClient,
  startTestGateway,
  type TestGateway,
  testCredentials,
} from '../support/gateway.js';

const issuer = 'https://platform.example.test';
const audience = 'vca-test';
const validSession = { game: 'unigine-heaven', resolution: '1080p', fps: 60 };

interface SigningKey {
  alg: string;
  privateKey: CryptoKey;
  publicPem: string;
}

async function signingKey(alg: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey, publicPem: await exportSPKI(publicKey) };
}

let es256: SigningKey;
let es256Second: SigningKey;
let rs256: SigningKey;
let stranger: SigningKey;
let gw: TestGateway;

/** A token as the platform issues it, `claims` and `options` changing what a test needs. */
async function token(
  sub: string | undefined,
  options: {
    key?: SigningKey;
    claims?: JWTPayload;
    expiresInSeconds?: number;
    noExpiry?: boolean;
    kid?: string;
    /** The clock of the gateway the token is for (ms); `gw`'s by default. */
    clock?: number;
  } = {},
): Promise<string> {
  const key = options.key ?? es256;
  const nowSeconds = Math.floor((options.clock ?? gw.clock.now()) / 1000);
  let jwt = new SignJWT({ iss: issuer, aud: audience, ...options.claims })
    .setProtectedHeader({ alg: key.alg, ...(options.kid ? { kid: options.kid } : {}) })
    .setIssuedAt(nowSeconds);
  if (sub !== undefined) jwt = jwt.setSubject(sub);
  if (!options.noExpiry) jwt = jwt.setExpirationTime(nowSeconds + (options.expiresInSeconds ?? 600));
  return jwt.sign(key.privateKey);
}

const as = (jwt: string) => ({ token: jwt });

async function startGateway(gamerJwt: Record<string, unknown>, extraAuth: Record<string, unknown> = {}) {
  const gateway = await startTestGateway({
    auth: {
      gamerTokens: [testCredentials.gamerToken],
      operatorTokens: [testCredentials.operatorToken],
      orchestratorSecret: testCredentials.orchestratorSecret,
      masterSecret: testCredentials.masterSecret,
      gamerJwt,
      ...extraAuth,
    },
  });
  const node = await gateway.registerNode('render-1', 'L4', 8);
  nodeTokens.set(gateway, node.token);
  await reportIdle(gateway);
  return gateway;
}

const nodeTokens = new Map<TestGateway, string>();

/** Fresh telemetry for render-1, after a test moved the clock past its freshness. */
async function reportIdle(target: TestGateway): Promise<void> {
  const answer = await target.telemetry('render-1', nodeTokens.get(target)!, idleTelemetry(8));
  expect(answer.status).toBe(200);
}

beforeAll(async () => {
  [es256, es256Second, rs256, stranger] = await Promise.all([
    signingKey('ES256'),
    signingKey('ES256'),
    signingKey('RS256'),
    signingKey('ES256'),
  ]);
  gw = await startGateway({
    issuer,
    audience,
    publicKeys: [es256.publicPem, es256Second.publicPem, rs256.publicPem],
    clockToleranceSeconds: 5,
  });
});
afterAll(async () => gw?.close());
beforeEach(async () => reportIdle(gw));

describe('gamer identity: tokens', () => {
  it('accepts a token signed by any configured key (ES256, a second ES256, RS256)', async () => {
    for (const key of [es256, es256Second, rs256]) {
      const jwt = await token(`gamer-key-${key.alg}-${key === es256Second ? 2 : 1}`, { key });
      const response = await gw.request(as(jwt), 'GET', '/v1/catalog');
      expect(response.status, JSON.stringify(response.body)).toBe(200);
    }
  });

  it.each([
    ['another issuer', () => token('gamer-x', { claims: { iss: 'https://evil.example.test' } })],
    ['another audience', () => token('gamer-x', { claims: { aud: 'someone-else' } })],
    ['an expired token', () => token('gamer-x', { expiresInSeconds: -60 })],
    ['a token without exp', () => token('gamer-x', { noExpiry: true })],
    ['a token without sub', () => token(undefined)],
    [
      'a token not valid yet',
      () => token('gamer-x', { claims: { nbf: Math.floor(gw.clock.now() / 1000) + 600 } }),
    ],
    ['a token signed by a key that is not configured', () => token('gamer-x', { key: stranger })],
    [
      'a token whose signature was swapped for another token’s',
      async () => {
        const [head, body] = (await token('gamer-x')).split('.');
        const other = (await token('gamer-y')).split('.')[2];
        return `${head}.${body}.${other}`;
      },
    ],
    [
      'an unsigned token (alg none)',
      async () => {
        const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
        const exp = Math.floor(gw.clock.now() / 1000) + 600;
        return `${encode({ alg: 'none' })}.${encode({ iss: issuer, aud: audience, sub: 'gamer-x', exp })}.`;
      },
    ],
    [
      'an HMAC token keyed with a public key',
      async () =>
        new SignJWT({ iss: issuer, aud: audience, sub: 'gamer-x' })
          .setProtectedHeader({ alg: 'HS256' })
          .setExpirationTime('10m')
          .sign(new TextEncoder().encode(es256.publicPem)),
    ],
  ] as const)('refuses %s with 401, changing nothing', async (_name, make) => {
    const before = await fleetSnapshot(gw);
    const response = await gw.request(as(await make()), 'POST', '/v1/sessions', validSession);
    expectProblem(response, 401, 'VCA_ERR_UNAUTHORIZED');
    expect(await fleetSnapshot(gw)).toEqual(before);
  });

  it('accepts a token naming a kid when the keys are PEM keys (which carry none), as identity providers sign', async () => {
    for (const key of [es256Second, rs256]) {
      const signed = await token('gamer-kid', { key, kid: 'provider-key-2024' });
      expect((await gw.request(as(signed), 'GET', '/v1/catalog')).status).toBe(200);
    }
    const forged = await token('gamer-kid', { key: stranger, kid: 'provider-key-2024' });
    expectProblem(await gw.request(as(forged), 'GET', '/v1/catalog'), 401, 'VCA_ERR_UNAUTHORIZED');
  });

  it('judges expiry by the gateway clock, with the configured tolerance', async () => {
    const jwt = await token('gamer-clock', { expiresInSeconds: 60 });
    expect((await gw.request(as(jwt), 'GET', '/v1/catalog')).status).toBe(200);
    gw.clock.advance(63_000);
    expect((await gw.request(as(jwt), 'GET', '/v1/catalog')).status).toBe(200);
    gw.clock.advance(3_000);
    expectProblem(await gw.request(as(jwt), 'GET', '/v1/catalog'), 401, 'VCA_ERR_UNAUTHORIZED');
  });

  it('still answers an operator token on a gamer route with 403, and an unknown static token with 401', async () => {
    expectProblem(await gw.request('operator', 'GET', '/v1/catalog'), 403, 'VCA_ERR_FORBIDDEN');
    expectProblem(
      await gw.request(as('not-a-token-at-all-123'), 'GET', '/v1/catalog'),
      401,
      'VCA_ERR_UNAUTHORIZED',
    );
  });
});

describe('gamer identity: sessions belong to the gamer', () => {
  it("answers another gamer's session exactly as an unknown one, on every route, and changes nothing", async () => {
    const alice = await token('alice');
    const bob = await token('bob');
    const created = await gw.request(as(alice), 'POST', '/v1/sessions', { ...validSession, wait: false });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.sessionId as string;
    expect((await gw.request(as(alice), 'GET', `/v1/sessions/${id}`)).status).toBe(200);
    expect((await gw.request(as(alice), 'POST', `/v1/sessions/${id}/heartbeat`)).status).toBe(200);

    const before = await fleetSnapshot(gw);
    const unknown = await gw.request(as(bob), 'GET', '/v1/sessions/no-such-session');
    expectProblem(unknown, 404, 'VCA_ERR_SESSION_NOT_FOUND');
    for (const [method, route] of [
      ['GET', `/v1/sessions/${id}`],
      ['POST', `/v1/sessions/${id}/heartbeat`],
      ['DELETE', `/v1/sessions/${id}`],
    ] as const) {
      const foreign = await gw.request(as(bob), method, route);
      expectProblem(foreign, 404, 'VCA_ERR_SESSION_NOT_FOUND');
      // No oracle: the same answer as for a session that does not exist, but for the id it names.
      expect(foreign.body.detail.replace(id, 'ID')).toBe(
        unknown.body.detail.replace('no-such-session', 'ID'),
      );
      expect(foreign.body).not.toHaveProperty('ticket');
    }
    expect(await fleetSnapshot(gw)).toEqual(before);
    expect((await gw.request(as(alice), 'GET', `/v1/sessions/${id}`)).body.state).toBe('assigned');

    // A front-end's static token acts for every gamer.
    expect((await gw.request('gamer', 'GET', `/v1/sessions/${id}`)).status).toBe(200);
    expect((await gw.request(as(alice), 'DELETE', `/v1/sessions/${id}`)).status).toBe(200);
    // Ended: still Alice's alone (410 for her, 404 for Bob).
    expectProblem(await gw.request(as(alice), 'DELETE', `/v1/sessions/${id}`), 410, 'VCA_ERR_SESSION_ENDED');
    expectProblem(
      await gw.request(as(bob), 'DELETE', `/v1/sessions/${id}`),
      404,
      'VCA_ERR_SESSION_NOT_FOUND',
    );
    expectProblem(await gw.request(as(bob), 'GET', `/v1/sessions/${id}`), 404, 'VCA_ERR_SESSION_NOT_FOUND');
  });

  it('lets a static token end a gamer’s session, and keeps static-token sessions open to every static caller', async () => {
    const carol = await token('carol');
    const owned = await gw.request(as(carol), 'POST', '/v1/sessions', validSession);
    expect(owned.status).toBe(201);
    expect((await gw.request('gamer', 'DELETE', `/v1/sessions/${owned.body.sessionId}`)).status).toBe(200);
    // Static tokens: no owner and no per-gamer limit, as before.
    const first = await gw.request('gamer', 'POST', '/v1/sessions', validSession);
    const second = await gw.request('gamer', 'POST', '/v1/sessions', validSession);
    expect([first.status, second.status]).toEqual([201, 201]);
    // A gamer token cannot reach a front-end's session either.
    expectProblem(
      await gw.request(as(carol), 'GET', `/v1/sessions/${first.body.sessionId}`),
      404,
      'VCA_ERR_SESSION_NOT_FOUND',
    );
    for (const response of [first, second]) {
      expect((await gw.request('gamer', 'DELETE', `/v1/sessions/${response.body.sessionId}`)).status).toBe(
        200,
      );
    }
  });
});

describe('gamer identity: auth.maxSessionsPerGamer (default 1)', () => {
  it('refuses a second live session of one gamer with 409, and admits it once the first ends', async () => {
    const dave = await token('dave');
    const first = await gw.request(as(dave), 'POST', '/v1/sessions', validSession);
    expect(first.status).toBe(201);
    const before = await fleetSnapshot(gw);
    const second = await gw.request(as(dave), 'POST', '/v1/sessions', validSession);
    expectProblem(second, 409, 'VCA_ERR_GAMER_SESSION_LIMIT');
    expect(await fleetSnapshot(gw)).toEqual(before);
    // Another gamer is not held back.
    const erin = await gw.request(as(await token('erin')), 'POST', '/v1/sessions', validSession);
    expect(erin.status).toBe(201);
    expect((await gw.request(as(dave), 'DELETE', `/v1/sessions/${first.body.sessionId}`)).status).toBe(200);
    const again = await gw.request(as(dave), 'POST', '/v1/sessions', validSession);
    expect(again.status).toBe(201);
    for (const [jwt, response] of [
      [dave, again],
      [await token('erin'), erin],
    ] as const) {
      expect((await gw.request(as(jwt), 'DELETE', `/v1/sessions/${response.body.sessionId}`)).status).toBe(
        200,
      );
    }
  });

  it('admits exactly one of many concurrent requests of one gamer', async () => {
    const frank = await token('frank');
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => gw.request(as(frank), 'POST', '/v1/sessions', validSession)),
    );
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(1);
    expect(answers.filter((answer) => answer.body?.code === 'VCA_ERR_GAMER_SESSION_LIMIT')).toHaveLength(7);
    const won = answers.find((answer) => answer.status === 201)!;
    expect((await gw.request(as(frank), 'DELETE', `/v1/sessions/${won.body.sessionId}`)).status).toBe(200);
  });

  it('frees the place when the lease expires', async () => {
    const grace = await token('grace', { expiresInSeconds: 3600 });
    const first = await gw.request(as(grace), 'POST', '/v1/sessions', validSession);
    expect(first.status).toBe(201);
    expectProblem(
      await gw.request(as(grace), 'POST', '/v1/sessions', validSession),
      409,
      'VCA_ERR_GAMER_SESSION_LIMIT',
    );
    gw.clock.advance(31_000);
    await gw.tick();
    await reportIdle(gw);
    const again = await gw.request(as(await token('grace')), 'POST', '/v1/sessions', validSession);
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect(
      (await gw.request(as(await token('grace')), 'DELETE', `/v1/sessions/${again.body.sessionId}`)).status,
    ).toBe(200);
  });
});

describe('gamer identity: WebSocket /v1/play', () => {
  it('binds a socket session to the gamer of ?token=, enforces the limit, and hides it from other gamers', async () => {
    const heidi = await token('heidi');
    const ivan = await token('ivan');
    const first = await PlayClient.connect(gw.wsUrl, heidi);
    const second = await PlayClient.connect(gw.wsUrl, heidi);
    const other = await PlayClient.connect(gw.wsUrl, ivan);
    try {
      first.send({ type: 'request', ...validSession });
      const assigned = await first.next('assigned');
      expect(assigned.sessionId).toEqual(expect.any(String));
      second.send({ type: 'request', ...validSession });
      expect(await second.next('error')).toMatchObject({ code: 'VCA_ERR_GAMER_SESSION_LIMIT' });
      // Ivan holds Heidi's resume token: the session is still not his to see.
      other.send({ type: 'resume', sessionId: assigned.sessionId, resumeToken: assigned.resumeToken });
      expect(await other.next('error')).toMatchObject({ code: 'VCA_ERR_SESSION_NOT_FOUND' });
      // Heidi resumes it from her other socket.
      second.send({ type: 'resume', sessionId: assigned.sessionId, resumeToken: assigned.resumeToken });
      expect(await second.next('assigned')).toMatchObject({ sessionId: assigned.sessionId });
      second.send({ type: 'end' });
      expect(await second.next('ended')).toMatchObject({ sessionId: assigned.sessionId });
    } finally {
      await Promise.all([first.close(), second.close(), other.close()]);
    }
  });

  it('refuses the upgrade of a token that does not verify', async () => {
    await expect(PlayClient.connect(gw.wsUrl, await token('judy', { key: stranger }))).rejects.toThrow(
      /upgrade refused: 401/,
    );
  });
});

describe('gamer identity: keys from a local JWKS file', () => {
  let jwksGateway: TestGateway | undefined;

  afterAll(async () => jwksGateway?.close());

  it('verifies a token whose kid names a key of the file, and refuses one naming no key', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'vca-jwks-')), 'jwks.json');
    const retired = await generateKeyPair('ES256', { extractable: true });
    const live = await importSPKI(es256.publicPem, 'ES256', { extractable: true });
    writeFileSync(
      file,
      JSON.stringify({
        keys: [
          { ...(await exportJWK(retired.publicKey)), kid: 'retired', use: 'sig' },
          { ...(await exportJWK(live)), kid: 'live', alg: 'ES256' },
        ],
      }),
    );
    jwksGateway = await startGateway({ issuer, audience, jwksFile: file, algorithms: ['ES256'] });
    const signed = (kid: string) => token('kim', { kid, clock: jwksGateway!.clock.now() });
    expect((await jwksGateway.request(as(await signed('live')), 'GET', '/v1/catalog')).status).toBe(200);
    for (const kid of ['retired', 'nobody']) {
      expectProblem(
        await jwksGateway.request(as(await signed(kid)), 'GET', '/v1/catalog'),
        401,
        'VCA_ERR_UNAUTHORIZED',
      );
    }
  });
});
