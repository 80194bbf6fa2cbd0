/**
 * Who gets in: nothing once the server is closing, at most the configured request rate per client
 * (every HTTP request and upgrade spends a token, unknown routes included, so probing is no way around
 * it; only the health routes spend none, so a load balancer's checks never use up the bucket its
 * clients share or get a 429), and at most the configured number of open WebSockets per address, each
 * held as a slot released exactly once. A client is its credential on routes that take one (gamer,
 * operator, node: the `Authorization` header keys the bucket, and a refused credential charges the
 * address instead), otherwise its address: the one `trusted-proxies.ts` resolves, behind a trusted
 * proxy the proxy's client, not the proxy. Keying by credential spares each request the `getpeername`
 * system call the address costs.
 */

import { VcaError } from '../errors.js';
import { RateLimiter } from './rate-limiter.js';
import { TrustedProxies } from './trusted-proxies.js';

/**
 * Longest `Authorization` header that keys a bucket of its own; a longer one is counted by address (it
 * bounds the memory a bucket key takes).
 */
const maxCredentialKeyLength = 2048;

/** Liveness and readiness: answered without spending a rate-limit token. */
const healthPaths: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export interface AdmissionLimits {
  /** Concurrent WebSockets per client address. */
  maxConnectionsPerAddress: number;
  /** Sustained HTTP requests (upgrades included) per second per client address. */
  requestsPerSecondPerAddress: number;
  /** Requests a client address may make in a burst above the sustained rate. */
  requestBurst: number;
  /** Proxies (addresses, CIDR blocks) whose PROXY header and X-Forwarded-For name the client; none by default. */
  trustedProxies?: readonly string[];
}

/** A connection slot counted against an address until released exactly once. */
export interface ConnectionSlot {
  readonly address: string;
  released: boolean;
}

export class Admission {
  private readonly maxConnectionsPerAddress: number;
  private readonly rateLimiter: RateLimiter;
  private readonly connectionsByAddress = new Map<string, number>();
  private isClosing = false;
  /** Resolves the client address of a request (read by the request reader). */
  readonly trustedProxies: TrustedProxies;

  /** `now` is the milliseconds clock of the rate limiter. */
  constructor(limits: AdmissionLimits, now: () => number) {
    this.maxConnectionsPerAddress = limits.maxConnectionsPerAddress;
    this.rateLimiter = new RateLimiter({
      ratePerSecond: limits.requestsPerSecondPerAddress,
      burst: limits.requestBurst,
      now,
    });
    this.trustedProxies = new TrustedProxies(limits.trustedProxies ?? []);
  }

  get closing(): boolean {
    return this.isClosing;
  }

  /** From now on every request and upgrade is refused with VCA_ERR_SHUTTING_DOWN. */
  close(): void {
    this.isClosing = true;
  }

  /**
   * The rate-limit key of a request that presents `authorization` on a route whose access is proven by
   * a credential (gamer, operator, node), or undefined when the request is to be counted by address.
   */
  credentialKey(authorization: string | undefined): string | undefined {
    if (authorization === undefined || authorization === '' || authorization.length > maxCredentialKeyLength)
      return undefined;
    return `credential ${authorization}`;
  }

  /**
   * Refuses new work while closing and applies the request rate to a presented credential's own bucket
   * (`credentialKey`). The credential is not verified yet: when the route refuses it, `refuseCredential`
   * drops its bucket and charges the client address instead, so invented tokens buy nothing.
   */
  admitCredential(key: string): void {
    if (this.isClosing) throw new VcaError('VCA_ERR_SHUTTING_DOWN');
    this.take(key);
  }

  /** A credential the route refused (401, 403): its bucket goes, and the request counts against the address. */
  refuseCredential(key: string, remoteAddress: string): void {
    this.rateLimiter.forget(key);
    this.take(remoteAddress);
  }

  /** Refuses new work while closing and applies the per-address request rate (health routes exempt). */
  admit(remoteAddress: string, path = ''): void {
    if (this.isClosing) throw new VcaError('VCA_ERR_SHUTTING_DOWN');
    if (healthPaths.has(path)) return;
    this.take(remoteAddress);
  }

  private take(key: string): void {
    const decision = this.rateLimiter.take(key);
    if (!decision.allowed) {
      throw new VcaError('VCA_ERR_RATE_LIMITED', `Slow down; retry in ${decision.retryAfterSeconds} s`, {
        retryAfterSeconds: decision.retryAfterSeconds,
      });
    }
  }

  reserveConnection(address: string): ConnectionSlot {
    const count = this.connectionsByAddress.get(address) ?? 0;
    if (count >= this.maxConnectionsPerAddress) {
      throw new VcaError(
        'VCA_ERR_TOO_MANY_CONNECTIONS',
        `At most ${this.maxConnectionsPerAddress} WebSocket connections per address`,
      );
    }
    this.connectionsByAddress.set(address, count + 1);
    return { address, released: false };
  }

  releaseConnection(slot: ConnectionSlot): void {
    if (slot.released) return;
    slot.released = true;
    const count = (this.connectionsByAddress.get(slot.address) ?? 1) - 1;
    // Deleting at zero keeps the map as small as the set of connected addresses.
    if (count <= 0) this.connectionsByAddress.delete(slot.address);
    else this.connectionsByAddress.set(slot.address, count);
  }
}
