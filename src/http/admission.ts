/**
 * Who gets in: nothing once the server is closing, at most the configured request rate per client
 * address (every HTTP request and upgrade spends a token, unknown routes included, so probing is no
 * way around it), and at most the configured number of open WebSockets per address, each held as a
 * slot released exactly once.
 */

import { VcaError } from '../errors.js';
import { RateLimiter } from './rate-limiter.js';

export interface AdmissionLimits {
  /** Concurrent WebSockets per client address. */
  maxConnectionsPerAddress: number;
  /** Sustained HTTP requests (upgrades included) per second per client address. */
  requestsPerSecondPerAddress: number;
  /** Requests a client address may make in a burst above the sustained rate. */
  requestBurst: number;
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

  /** `now` is the milliseconds clock of the rate limiter. */
  constructor(limits: AdmissionLimits, now: () => number) {
    this.maxConnectionsPerAddress = limits.maxConnectionsPerAddress;
    this.rateLimiter = new RateLimiter({
      ratePerSecond: limits.requestsPerSecondPerAddress,
      burst: limits.requestBurst,
      now,
    });
  }

  get closing(): boolean {
    return this.isClosing;
  }

  /** From now on every request and upgrade is refused with VCA_ERR_SHUTTING_DOWN. */
  close(): void {
    this.isClosing = true;
  }

  /** Refuses new work while closing and applies the per-address request rate. */
  admit(remoteAddress: string): void {
    if (this.isClosing) throw new VcaError('VCA_ERR_SHUTTING_DOWN');
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
