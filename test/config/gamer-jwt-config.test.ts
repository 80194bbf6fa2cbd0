/**
 * `auth.gamerJwt` and `auth.maxSessionsPerGamer` are checked at boot: a missing issuer or audience,
 * keys given twice or not at all, a key that cannot be read, a private key, or a key no configured
 * algorithm can use stop start-up with the key path; environment variables set them as well.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const privatePem = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

function file(name: string, text: string): string {
  const target = path.join(mkdtempSync(path.join(tmpdir(), 'vca-gamer-jwt-')), name);
  writeFileSync(target, text);
  return target;
}

const load = (gamerJwt: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
  loadConfig({ env, overrides: { auth: { gamerJwt } } });
const base = { issuer: 'https://platform.test', audience: 'vca' };

describe('config: gamer identity tokens', () => {
  it('is off by default, with one live session per gamer', () => {
    const config = loadConfig({ env: {} });
    expect(config.auth.gamerJwt).toBeUndefined();
    expect(config.auth.maxSessionsPerGamer).toBe(1);
  });

  it('takes PEM keys with defaults for the algorithms and the clock tolerance', () => {
    const config = load({ ...base, publicKeys: [ecPem, rsaPem] });
    expect(config.auth.gamerJwt).toMatchObject({
      ...base,
      algorithms: ['RS256', 'ES256', 'EdDSA'],
      clockToleranceSeconds: 30,
      jwksFile: '',
    });
  });

  it('takes a local JWKS file instead', () => {
    const jwk = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig' };
    const jwksFile = file('jwks.json', JSON.stringify({ keys: [jwk] }));
    expect(load({ ...base, jwksFile }).auth.gamerJwt?.jwksFile).toBe(jwksFile);
  });

  it('is set from environment variables', () => {
    const jwksFile = file('jwks.json', JSON.stringify({ keys: [ec.publicKey.export({ format: 'jwk' })] }));
    const config = loadConfig({
      env: {
        VCA_GAMER_JWT_ISSUER: 'https://platform.test',
        VCA_GAMER_JWT_AUDIENCE: 'vca',
        VCA_GAMER_JWT_JWKS_FILE: jwksFile,
        VCA_GAMER_JWT_ALGORITHMS: 'ES256,ES384',
        VCA_MAX_SESSIONS_PER_GAMER: '3',
      },
    });
    expect(config.auth.gamerJwt).toMatchObject({ ...base, jwksFile, algorithms: ['ES256', 'ES384'] });
    expect(config.auth.maxSessionsPerGamer).toBe(3);
  });

  it.each([
    ['no issuer', { audience: 'vca', publicKeys: [ecPem] }, /auth\.gamerJwt\.issuer/],
    ['an empty audience', { ...base, audience: '', publicKeys: [ecPem] }, /auth\.gamerJwt\.audience/],
    ['no keys at all', { ...base }, /auth\.gamerJwt\.publicKeys.*exactly one/],
    [
      'both PEM keys and a JWKS file',
      { ...base, publicKeys: [ecPem], jwksFile: '/dev/null' },
      /auth\.gamerJwt\.publicKeys.*exactly one/,
    ],
    [
      'a PEM that is no key',
      { ...base, publicKeys: ['-----BEGIN PUBLIC KEY-----\nnope\n'] },
      /publicKeys\.0/,
    ],
    ['a private key', { ...base, publicKeys: [privatePem] }, /publicKeys\.0: give the public key/],
    [
      'an RSA key while only ES256 is accepted',
      { ...base, publicKeys: [ecPem, rsaPem], algorithms: ['ES256'] },
      /publicKeys\.1: a rsa key verifies none of/,
    ],
    ['a symmetric algorithm', { ...base, publicKeys: [ecPem], algorithms: ['HS256'] }, /algorithms\.0/],
    ['alg none', { ...base, publicKeys: [ecPem], algorithms: ['none'] }, /algorithms\.0/],
    ['a JWKS file that does not exist', { ...base, jwksFile: '/no/such/jwks.json' }, /jwksFile: cannot read/],
    [
      'a JWKS file that is no key set',
      { ...base, jwksFile: '<file>{"keys": []}' },
      /jwksFile: .*no \{"keys"/,
    ],
    [
      'a JWKS file holding a private key',
      { ...base, jwksFile: `<file>${JSON.stringify({ keys: [ec.privateKey.export({ format: 'jwk' })] })}` },
      /a private key/,
    ],
    [
      'a JWKS file holding a shared secret',
      { ...base, jwksFile: `<file>${JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] })}` },
      /not a public key/,
    ],
  ])('refuses %s at boot, naming the key path', (_name, settings, message) => {
    const gamerJwt = { ...settings } as Record<string, unknown>;
    const jwks = gamerJwt.jwksFile;
    if (typeof jwks === 'string' && jwks.startsWith('<file>'))
      gamerJwt.jwksFile = file('jwks.json', jwks.slice(6));
    expect(() => load(gamerJwt)).toThrow(ConfigError);
    expect(() => load(gamerJwt)).toThrow(message);
  });

  it('refuses a per-gamer limit below 1', () => {
    expect(() => loadConfig({ env: { VCA_MAX_SESSIONS_PER_GAMER: '0' } })).toThrow(
      /auth\.maxSessionsPerGamer/,
    );
  });
});
