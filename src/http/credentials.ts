/**
 * Credentials of the four roles — gamer, node, orchestrator, operator — and their checks. Gamer and
 * operator tokens are configured lists; a node's token is derived from the master secret and its id,
 * so each node holds its own and cannot act as another; the orchestrator proves itself with a shared
 * secret (Aodh cannot sign) or, for the VCA's own format, an HMAC-SHA256 signature with a timestamp.
 */
import { createHmac, createSecretKey, hash, type KeyObject, timingSafeEqual } from 'node:crypto';
import type { GamerJwtConfig } from '../config/schema.js';
import { VcaError } from '../errors.js';
import { GamerJwtVerifier, looksLikeJwt } from './gamer-jwt.js';

export type Role = 'gamer' | 'node' | 'orchestrator' | 'operator';

export interface CredentialsConfig {
  gamerTokens: readonly string[];
  operatorTokens: readonly string[];
  orchestratorSecret: string;
  masterSecret: string;
  signatureToleranceSeconds: number;
  /** Gamer identity tokens (JWTs) accepted on gamer routes besides the static gamer tokens. */
  gamerJwt?: GamerJwtConfig | undefined;
}

export interface PresentedCredentials {
  headers: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /**
   * Set only for a WebSocket upgrade, where browsers cannot send headers: `?token=` is read there and
   * nowhere else (a token in a REST URL ends up in access logs and proxies' histories).
   */
  queryTokenAccepted?: boolean;
}

// One-shot hashing (`crypto.hash`, Node 20.12+): a fraction of what a Hash object costs per request.
const digest = (token: string) => hash('sha256', token, 'hex');

function sameSecret(a: string, b: string): boolean {
  const left = hash('sha256', a, 'buffer');
  const right = hash('sha256', b, 'buffer');
  return timingSafeEqual(left, right) && a.length === b.length;
}

/** Constant-time equality of two byte strings; different lengths are unequal (and say only that). */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The bearer token of a request: `Authorization: Bearer T`, or `?token=T` on a WebSocket upgrade only. */
export function bearerToken(request: PresentedCredentials): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match?.[1];
  }
  if (request.queryTokenAccepted !== true) return undefined;
  return request.query.get('token') ?? undefined;
}

/** More nodes than one gaming cluster registers; past it the cache starts over. */
const maxVerifiedNodeTokens = 200_000;

export class Credentials {
  private readonly gamerDigests: ReadonlySet<string>;
  private readonly operatorDigests: ReadonlySet<string>;
  private readonly config: CredentialsConfig;
  private readonly gamerJwt: GamerJwtVerifier | undefined;
  /** The master secret as a key object, made once: HMAC with a string key makes one per call. */
  private readonly masterKey: KeyObject;
  /**
   * Node tokens (their bytes) already presented and verified, by node id: a node reports every few
   * seconds, and each report would otherwise cost an HMAC. Only a token that matched is kept, so the
   * map holds registered nodes that proved themselves, not whatever ids a caller invents; bounded all
   * the same.
   */
  private readonly verifiedNodeTokens = new Map<string, Buffer>();

  constructor(config: CredentialsConfig) {
    if (Buffer.byteLength(config.masterSecret) < 32)
      throw new Error('auth.masterSecret must be at least 32 bytes');
    if (config.orchestratorSecret.length < 16)
      throw new Error('auth.orchestratorSecret must be at least 16 characters');
    this.config = config;
    this.gamerDigests = new Set(config.gamerTokens.map(digest));
    this.operatorDigests = new Set(config.operatorTokens.map(digest));
    this.gamerJwt = config.gamerJwt ? new GamerJwtVerifier(config.gamerJwt) : undefined;
    this.masterKey = createSecretKey(Buffer.from(config.masterSecret));
  }

  /**
   * Gamer routes: answers the gamer the caller acts for. A static gamer token is a front-end acting
   * for every gamer (null); with `auth.gamerJwt`, a bearer token shaped like a JWT that is no static
   * token is a gamer identity token: the answer is then the promise of its verified `sub`. Refusals as
   * `requireRole` (401, 403), and 401 for an identity token that does not verify.
   */
  requireGamer(request: PresentedCredentials, nowMs: number): string | null | Promise<string> {
    if (this.gamerJwt) {
      const token = bearerToken(request);
      if (token !== undefined && looksLikeJwt(token)) {
        const known = digest(token);
        if (!this.gamerDigests.has(known) && !this.operatorDigests.has(known))
          return this.gamerJwt.subject(token, nowMs);
      }
    }
    this.requireRole(request, 'gamer');
    return null;
  }

  /** The token a node presents on its own routes; handed out when the node registers. */
  nodeToken(nodeId: string): string {
    return createHmac('sha256', this.masterKey)
      .update(`vca node token v1\u0000${nodeId}`)
      .digest('base64url');
  }

  /** Proof that a WebSocket client owns a session, for `resume` on any gateway instance. */
  resumeToken(sessionId: string): string {
    return createHmac('sha256', this.masterKey).update(`vca resume v1\u0000${sessionId}`).digest('base64url');
  }

  checkResumeToken(sessionId: string, token: unknown): boolean {
    return typeof token === 'string' && token.length < 200 && sameSecret(this.resumeToken(sessionId), token);
  }

  /** Gamer or operator routes: the bearer token must be one of that role's tokens. */
  requireRole(request: PresentedCredentials, role: 'gamer' | 'operator'): void {
    const token = bearerToken(request);
    if (!token)
      throw new VcaError('VCA_ERR_UNAUTHORIZED', `Send a ${role} token as "Authorization: Bearer <token>"`);
    const digests = role === 'gamer' ? this.gamerDigests : this.operatorDigests;
    const presented = digest(token);
    if (digests.has(presented)) return;
    const other = role === 'gamer' ? this.operatorDigests : this.gamerDigests;
    if (other.has(presented)) {
      throw new VcaError('VCA_ERR_FORBIDDEN', `These credentials are not ${role} credentials`);
    }
    throw new VcaError('VCA_ERR_UNAUTHORIZED', `The ${role} token is not valid`);
  }

  /** Node routes: the bearer token must be this node's own token. */
  requireNode(request: PresentedCredentials, nodeId: string): void {
    const token = bearerToken(request);
    if (!token)
      throw new VcaError('VCA_ERR_UNAUTHORIZED', 'Send the node token as "Authorization: Bearer <token>"');
    // Compared byte for byte in constant time (node tokens all have one length, so comparing lengths
    // first gives nothing away): no hash per report once the node's token is verified.
    const presented = Buffer.from(token);
    const verified = this.verifiedNodeTokens.get(nodeId);
    if (verified !== undefined && sameBytes(verified, presented)) return;
    const expected = Buffer.from(this.nodeToken(nodeId));
    if (sameBytes(expected, presented)) {
      if (this.verifiedNodeTokens.size >= maxVerifiedNodeTokens) this.verifiedNodeTokens.clear();
      this.verifiedNodeTokens.set(nodeId, expected);
      return;
    }
    if (this.gamerDigests.has(digest(token)) || this.operatorDigests.has(digest(token))) {
      throw new VcaError('VCA_ERR_FORBIDDEN', 'These credentials are not node credentials');
    }
    throw new VcaError('VCA_ERR_UNAUTHORIZED', `The token is not node "${nodeId}"'s token`);
  }

  /** Aodh and notification hooks: the shared secret in X-VCA-Hook-Secret or the URL's ?secret=. */
  requireHookSecret(request: PresentedCredentials): void {
    const presented = request.headers['x-vca-hook-secret'] ?? request.query.get('secret') ?? undefined;
    if (!presented) {
      throw new VcaError(
        'VCA_ERR_UNAUTHORIZED',
        'Send the orchestrator secret in X-VCA-Hook-Secret or ?secret=',
      );
    }
    if (!sameSecret(this.config.orchestratorSecret, presented)) {
      throw new VcaError('VCA_ERR_UNAUTHORIZED', 'The orchestrator secret is not valid');
    }
  }

  /**
   * The VCA's own webhook: `X-VCA-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`,
   * accepted within the tolerance window either side of `nowMs`.
   */
  requireSignature(request: PresentedCredentials, rawBody: Buffer, nowMs: number): void {
    const header = request.headers['x-vca-signature'];
    const parts = new Map(
      (header ?? '').split(',').map((part) => {
        const [key, ...rest] = part.trim().split('=');
        return [key ?? '', rest.join('=')] as const;
      }),
    );
    const timestamp = Number(parts.get('t'));
    const signature = parts.get('v1') ?? '';
    if (!header || !Number.isInteger(timestamp) || !/^[0-9a-f]{64}$/i.test(signature)) {
      throw new VcaError('VCA_ERR_SIGNATURE', 'Send X-VCA-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>');
    }
    if (Math.abs(nowMs / 1000 - timestamp) > this.config.signatureToleranceSeconds) {
      throw new VcaError('VCA_ERR_SIGNATURE', 'The signature timestamp is outside the accepted window');
    }
    const expected = signBody(this.config.orchestratorSecret, timestamp, rawBody);
    if (!timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(signature.toLowerCase(), 'hex'))) {
      throw new VcaError('VCA_ERR_SIGNATURE', 'The signature does not match the body');
    }
  }
}

/** Hex HMAC-SHA256 of `t.body`: what an orchestrator puts in `v1=` of X-VCA-Signature. */
export function signBody(secret: string, timestampSeconds: number, body: Buffer | string): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex');
}
