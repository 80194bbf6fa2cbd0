/**
 * Owns the session ticket format (`vca1.<claims>.<mac>`): signing on the gateway and offline
 * verification on a rendering node. Part of the wire contract: depends on node:crypto only, so a node
 * can vendor it alone.
 */

import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

/** What a ticket grants: one session, on one node and GPU, for one game and format, for a time window. */
export type TicketClaims = {
  v: 1;
  sid: string;
  node: string;
  gpu: number;
  game: string;
  width: number;
  height: number;
  fps: number;
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch; the ticket is valid strictly before it. */
  exp: number;
};

export type TicketErrorReason = 'malformed' | 'bad-signature' | 'wrong-node' | 'expired' | 'not-yet-valid';

/** Why a ticket was refused; `reason` is stable and safe to show, `message` is for logs. */
export class TicketError extends Error {
  readonly reason: TicketErrorReason;

  constructor(reason: TicketErrorReason, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'TicketError';
    this.reason = reason;
  }
}

export type VerifyTicketOptions = {
  nodeKey: Buffer;
  /** The id of the node doing the verifying; a ticket for any other node is refused. */
  nodeId: string;
  /** Milliseconds since the epoch; handed in so callers (and tests) own the clock. */
  now: number;
  /** Tolerance for clock drift between gateway and node; defaults to 30 seconds. */
  clockSkewSeconds?: number;
};

const PREFIX = 'vca1';
// Real tickets are ~300 characters; the cap bounds work done on hostile input before the MAC check.
const MAX_TOKEN_LENGTH = 2048;
const MAX_STRING_CLAIM_LENGTH = 256;
const KEY_BYTES = 32;
const DEFAULT_CLOCK_SKEW_SECONDS = 30;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const CLAIM_KEYS = ['v', 'sid', 'node', 'gpu', 'game', 'width', 'height', 'fps', 'iat', 'exp'] as const;

export function signTicket(claims: TicketClaims, nodeKey: Buffer): string {
  assertNodeKey(nodeKey);
  // Copy field by field: the runtime object may carry extra properties the type does not show.
  const canonical: TicketClaims = {
    v: claims.v,
    sid: claims.sid,
    node: claims.node,
    gpu: claims.gpu,
    game: claims.game,
    width: claims.width,
    height: claims.height,
    fps: claims.fps,
    iat: claims.iat,
    exp: claims.exp,
  };
  const problem = findClaimsProblem(canonical);
  if (problem !== undefined) {
    throw new TicketError('malformed', `refusing to sign invalid claims: ${problem}`);
  }
  const payload = Buffer.from(JSON.stringify(canonical), 'utf8').toString('base64url');
  return `${PREFIX}.${payload}.${mac(nodeKey, payload)}`;
}

export function verifyTicket(token: string, options: VerifyTicketOptions): TicketClaims {
  const { nodeKey, nodeId, now } = options;
  const skewSeconds = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  assertNodeKey(nodeKey);
  if (!Number.isFinite(now)) throw new TypeError('verifyTicket: now must be a finite number of milliseconds');
  if (!Number.isFinite(skewSeconds) || skewSeconds < 0) {
    throw new RangeError('verifyTicket: clockSkewSeconds must be a non-negative number');
  }

  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new TicketError('malformed', `a ticket is a string of 1 to ${MAX_TOKEN_LENGTH} characters`);
  }
  const parts = token.split('.');
  if (parts.length !== 3)
    throw new TicketError('malformed', 'a ticket has exactly three dot-separated parts');
  const [prefix, payload, signature] = parts as [string, string, string];
  if (prefix !== PREFIX)
    throw new TicketError('malformed', `unknown ticket version "${prefix.slice(0, 16)}"`);
  if (!BASE64URL.test(payload) || !BASE64URL.test(signature)) {
    throw new TicketError('malformed', 'payload and signature must be unpadded base64url');
  }

  // Comparing encoded text rather than decoded bytes also refuses non-canonical base64url spellings
  // of a valid MAC, so each ticket has exactly one accepted form. Nothing unauthenticated is parsed.
  const expected = Buffer.from(mac(nodeKey, payload), 'ascii');
  const presented = Buffer.from(signature, 'ascii');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw new TicketError('bad-signature', 'the signature does not match this node key');
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw new TicketError('malformed', 'the payload is not JSON');
  }
  const problem = findClaimsProblem(parsed);
  if (problem !== undefined) throw new TicketError('malformed', problem);
  const claims = parsed as TicketClaims;

  if (claims.node !== nodeId) {
    throw new TicketError('wrong-node', `the ticket is for node "${claims.node}", not "${nodeId}"`);
  }
  const skewMs = skewSeconds * 1000;
  if (claims.iat * 1000 > now + skewMs) {
    throw new TicketError('not-yet-valid', `issued at ${claims.iat}, in the future beyond the allowed skew`);
  }
  if (claims.exp * 1000 + skewMs <= now) {
    throw new TicketError('expired', `expired at ${claims.exp}`);
  }
  return claims;
}

/** Imported HMAC keys by node key, so signing many tickets for one node does not re-import its key. */
const importedKeys = new WeakMap<Buffer, KeyObject>();

function mac(nodeKey: Buffer, payload: string): string {
  let key = importedKeys.get(nodeKey);
  if (!key) {
    key = createSecretKey(nodeKey);
    importedKeys.set(nodeKey, key);
  }
  return createHmac('sha256', key).update(`${PREFIX}.${payload}`, 'utf8').digest('base64url');
}

function assertNodeKey(nodeKey: Buffer): void {
  // A wrong-sized key is a deployment mistake (say, a truncated hex string), not a bad ticket.
  if (!Buffer.isBuffer(nodeKey) || nodeKey.length !== KEY_BYTES) {
    throw new TypeError(`a ticket node key must be a ${KEY_BYTES}-byte Buffer`);
  }
}

/** Returns what is wrong with `value` as ticket claims, or undefined when it is exactly right. */
function findClaimsProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'claims must be an object';
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length !== CLAIM_KEYS.length || !CLAIM_KEYS.every((key) => Object.hasOwn(record, key))) {
    return `claims must have exactly the fields ${CLAIM_KEYS.join(', ')}`;
  }
  if (record.v !== 1) return 'v must be 1';
  for (const key of ['sid', 'node', 'game'] as const) {
    const field = record[key];
    if (typeof field !== 'string' || field.length === 0 || field.length > MAX_STRING_CLAIM_LENGTH) {
      return `${key} must be a string of 1 to ${MAX_STRING_CLAIM_LENGTH} characters`;
    }
  }
  if (!isIntegerAtLeast(record.gpu, 0)) return 'gpu must be a non-negative integer';
  for (const key of ['width', 'height', 'fps'] as const) {
    if (!isIntegerAtLeast(record[key], 1)) return `${key} must be a positive integer`;
  }
  if (!isIntegerAtLeast(record.iat, 0)) return 'iat must be a non-negative integer of seconds';
  if (!isIntegerAtLeast(record.exp, 0)) return 'exp must be a non-negative integer of seconds';
  if ((record.exp as number) <= (record.iat as number)) return 'exp must be after iat';
  return undefined;
}

function isIntegerAtLeast(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min;
}
