/**
 * The public keys gamer identity tokens are verified with (`auth.gamerJwt`): PEM keys or a local JWKS
 * file, read once into one JSON Web Key Set. Start-up checks them here (load-config.ts) and the
 * verifier (src/http/gamer-jwt.ts) reads the same set, so a key that cannot be read, is not a public
 * key, or fits none of the configured algorithms stops the gateway at boot, never on a request.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { GamerJwtConfig } from './schema.js';

export interface GamerJwtKeySet {
  keys: JsonWebKey[];
}

/** A key that cannot verify gamer tokens; `path` is its configuration key path. */
export class GamerJwtKeyError extends Error {
  override name = 'GamerJwtKeyError';
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

/** The algorithms a public key can verify, by its type (and curve). */
function algorithmsOf(key: KeyObject): readonly string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec':
      return (
        { prime256v1: ['ES256'], secp384r1: ['ES384'], secp521r1: ['ES512'] }[
          key.asymmetricKeyDetails?.namedCurve ?? ''
        ] ?? []
      );
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      return [];
  }
}

function checkUsable(key: KeyObject, jwkAlg: unknown, config: GamerJwtConfig, path: string): void {
  const usable = algorithmsOf(key).filter(
    (alg) =>
      (config.algorithms as readonly string[]).includes(alg) && (jwkAlg === undefined || jwkAlg === alg),
  );
  if (usable.length === 0) {
    throw new GamerJwtKeyError(
      path,
      `a ${key.asymmetricKeyType ?? 'unknown'} key${typeof jwkAlg === 'string' ? ` for ${jwkAlg}` : ''} verifies none of auth.gamerJwt.algorithms (${config.algorithms.join(', ')})`,
    );
  }
}

function fromPem(pem: string, config: GamerJwtConfig, path: string): JsonWebKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new GamerJwtKeyError(path, `not a PEM public key (${(error as Error).message})`);
  }
  if (/PRIVATE KEY/.test(pem)) throw new GamerJwtKeyError(path, 'give the public key, never the private one');
  checkUsable(key, undefined, config, path);
  return key.export({ format: 'jwk' });
}

function fromJwksFile(config: GamerJwtConfig): JsonWebKey[] {
  const path = 'auth.gamerJwt.jwksFile';
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(config.jwksFile, 'utf8'));
  } catch (error) {
    throw new GamerJwtKeyError(path, `cannot read ${config.jwksFile} as JSON (${(error as Error).message})`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new GamerJwtKeyError(path, `${config.jwksFile} holds no {"keys": [...]} JSON Web Key Set`);
  }
  return keys.map((jwk: unknown, index) => {
    const where = `${path} (${config.jwksFile} keys.${index})`;
    if (typeof jwk !== 'object' || jwk === null) throw new GamerJwtKeyError(where, 'not a JSON Web Key');
    if ('d' in jwk) throw new GamerJwtKeyError(where, 'a private key: publish public keys only');
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch (error) {
      throw new GamerJwtKeyError(where, `not a public key (${(error as Error).message})`);
    }
    checkUsable(key, (jwk as { alg?: unknown }).alg, config, where);
    return jwk as JsonWebKey;
  });
}

/** The keys of `config` as one key set; throws GamerJwtKeyError naming the key path. */
export function readGamerJwtKeys(config: GamerJwtConfig): GamerJwtKeySet {
  const pems = config.publicKeys;
  if (pems.length > 0 === (config.jwksFile !== '')) {
    throw new GamerJwtKeyError(
      'auth.gamerJwt.publicKeys',
      'give the verification keys either as publicKeys (PEM) or as jwksFile, exactly one of the two',
    );
  }
  if (pems.length > 0) {
    return { keys: pems.map((pem, index) => fromPem(pem, config, `auth.gamerJwt.publicKeys.${index}`)) };
  }
  return { keys: fromJwksFile(config) };
}
