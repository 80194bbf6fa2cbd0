/**
 * Who gets in: nothing once the server is closing, at most the configured request rate per client
 * address (every HTTP request and upgrade spends a token, unknown routes included, so probing is no
 * way around it; only the health routes spend none, so a load balancer's checks never use up the
 * bucket its clients share or get a 429), and at most the configured number of open WebSockets per
 * address, each held as a slot released exactly once. The client address is the one
 * `trusted-proxies.ts` resolves: behind a trusted proxy, the proxy's client, not the proxy.
 */

import { VcaError } from '../errors.js';
import { RateLimiter } from './rate-limiter.js';
import { TrustedProxies } from './trusted-proxies.js';

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

  /** Refuses new work while closing and applies the per-address request rate (health routes exempt). */
  admit(remoteAddress: string, path = ''): void {
    if (this.isClosing) throw new VcaError('VCA_ERR_SHUTTING_DOWN');
    if (healthPaths.has(path)) return;
    const decision = this.rateLimiter.take(remoteAddress);
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
