/**
 * Gamer identity tokens: JWTs the operator's platform signs for one gamer (`sub`), verified here with
 * jose against the configured public keys (`auth.gamerJwt`): signature by one of the keys under an
 * allowed public-key algorithm, `iss`, `aud`, `exp` (required) and `nbf` against the gateway's clock.
 * Verification is on the allocation path, so the keys are read once (src/config/gamer-jwt-keys.ts)
 * into a local key set that imports each key once per algorithm and keeps it; a request only verifies.
 */
import {
  createLocalJWKSet,
  errors,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  jwtVerify,
} from 'jose';
import { readGamerJwtKeys } from '../config/gamer-jwt-keys.js';
import type { GamerJwtConfig } from '../config/schema.js';
import { VcaError } from '../errors.js';

/** Longest token looked at; a JWT of a gamer's claims is far shorter. */
const maxTokenLength = 8192;
/** A `sub` becomes a store key suffix and is compared on every session access: bounded. */
const maxSubjectLength = 256;
/** Three base64url parts: header, claims, signature. */
const compactJwt = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Whether a bearer token has the shape of a JWT (static tokens are checked before this matters). */
export function looksLikeJwt(token: string): boolean {
  return token.length <= maxTokenLength && compactJwt.test(token);
}

export class GamerJwtVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly algorithms: string[];
  private readonly clockTolerance: number;

  /** Reads the keys at once: a bad key throws here, at boot. */
  constructor(config: GamerJwtConfig) {
    const keys = readGamerJwtKeys(config).keys as JWK[];
    const keySet = createLocalJWKSet({ keys });
    // PEM keys carry no `kid`, and a key set matches a token naming one only to a key with that `kid`:
    // identity providers name one in every token, so against PEM keys the token's `kid` is not looked at.
    this.keys = keys.every((key) => key.kid === undefined)
      ? (header, token) => keySet({ ...header, kid: undefined }, token)
      : keySet;
    this.issuer = config.issuer;
    this.audience = config.audience;
    this.algorithms = [...config.algorithms];
    this.clockTolerance = config.clockToleranceSeconds;
  }

  /** The gamer a valid token names (its `sub`); VCA_ERR_UNAUTHORIZED saying why otherwise. */
  async subject(token: string, nowMs: number): Promise<string> {
    let payload: JWTPayload;
    try {
      payload = await this.verify(token, {
        issuer: this.issuer,
        audience: this.audience,
        algorithms: this.algorithms,
        clockTolerance: this.clockTolerance,
        requiredClaims: ['exp', 'sub'],
        currentDate: new Date(nowMs),
      });
    } catch (error) {
      const reason = error instanceof errors.JOSEError ? error.message : 'not a valid JWT';
      throw new VcaError('VCA_ERR_UNAUTHORIZED', `The gamer identity token is not valid: ${reason}`);
    }
    const subject = payload.sub;
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > maxSubjectLength) {
      throw new VcaError(
        'VCA_ERR_UNAUTHORIZED',
        `The gamer identity token's "sub" must be a string of 1 to ${maxSubjectLength} characters`,
      );
    }
    return subject;
  }

  /**
   * Keys without a `kid` (PEM keys always) may all match a token's algorithm: the local key set then
   * hands them over one by one, and the token verifies if one of them signed it.
   */
  private async verify(token: string, options: JWTVerifyOptions): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, this.keys, options)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      for await (const key of error) {
        try {
          return (await jwtVerify(token, key, options)).payload;
        } catch (attempt) {
          if (!(attempt instanceof errors.JWSSignatureVerificationFailed)) throw attempt;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }
}
