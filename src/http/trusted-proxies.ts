/**
 * Who the client is when the gateway sits behind proxies (`server.trustedProxies`). Only a peer in the
 * trusted list may speak for someone else: the address its PROXY protocol v2 header carries, then the
 * `X-Forwarded-For` chain read from the right, each hop accepted while the address before it is
 * itself trusted. The first untrusted address met is the client. A peer outside the list is the client,
 * whatever headers it sends (a client cannot choose its own rate-limit bucket).
 *
 * Addresses are compared as 16 bytes (IPv4 as IPv4-mapped IPv6), so `10.0.0.0/8` also covers
 * `::ffff:10.1.2.3`. The list is small (a handful of proxies or subnets); matching is a linear scan.
 */

import { addressFromBytes, parseAddressBytes } from './remote-address.js';

/** Hops of X-Forwarded-For read at most; a longer chain of trusted proxies ends at the last one read. */
const maxForwardedHops = 32;

interface AddressBlock {
  bytes: Uint8Array;
  /** Leading bits that must match, over the 16-byte form (an IPv4 /8 is 96 + 8). */
  prefixBits: number;
}

/** A `server.trustedProxies` entry that is no address or CIDR block; `index` is its position. */
export class TrustedProxyEntryError extends Error {
  override name = 'TrustedProxyEntryError';
  constructor(
    readonly index: number,
    readonly entry: string,
    reason: string,
  ) {
    super(`"${entry}" ${reason}`);
  }
}

function parseBlock(entry: string, index: number): AddressBlock {
  const text = entry.trim();
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const bytes = parseAddressBytes(addressText);
  if (bytes === undefined) {
    throw new TrustedProxyEntryError(
      index,
      entry,
      'is not an IP address or CIDR block (e.g. 10.0.0.5, 10.0.0.0/8, 2001:db8::/32)',
    );
  }
  const isV4 = !addressText.includes(':');
  const familyBits = isV4 ? 32 : 128;
  let prefix = familyBits;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
    if (!(prefix >= 0 && prefix <= familyBits)) {
      throw new TrustedProxyEntryError(
        index,
        entry,
        `has an invalid prefix length: use 0-${familyBits} for ${isV4 ? 'IPv4' : 'IPv6'}`,
      );
    }
  }
  return { bytes, prefixBits: isV4 ? 96 + prefix : prefix };
}

function blockContains(block: AddressBlock, address: Uint8Array): boolean {
  const wholeBytes = block.prefixBits >> 3;
  for (let i = 0; i < wholeBytes; i++) if (block.bytes[i] !== address[i]) return false;
  const restBits = block.prefixBits & 7;
  if (restBits === 0) return true;
  const mask = (0xff << (8 - restBits)) & 0xff;
  return (block.bytes[wholeBytes]! & mask) === (address[wholeBytes]! & mask);
}

/**
 * One X-Forwarded-For entry as an address: `192.0.2.1`, `192.0.2.1:5678`, `2001:db8::1`,
 * `[2001:db8::1]` or `[2001:db8::1]:443` (some proxies add the port). Undefined for anything else
 * (`unknown`, obfuscated identifiers, garbage).
 */
function parseForwardedEntry(entry: string): Uint8Array | undefined {
  let text = entry.trim();
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end === -1) return undefined;
    const after = text.slice(end + 1);
    if (after !== '' && !/^:\d{1,5}$/.test(after)) return undefined;
    return parseAddressBytes(text.slice(1, end));
  }
  const colon = text.indexOf(':');
  // One colon is IPv4 with a port; more is IPv6 without brackets.
  if (colon !== -1 && colon === text.lastIndexOf(':')) {
    if (!/^\d{1,5}$/.test(text.slice(colon + 1))) return undefined;
    text = text.slice(0, colon);
  }
  return parseAddressBytes(text);
}

export class TrustedProxies {
  private readonly blocks: readonly AddressBlock[];

  /** Throws TrustedProxyEntryError for the first entry that is no address or CIDR block. */
  constructor(entries: readonly string[]) {
    this.blocks = entries.map((entry, index) => parseBlock(entry, index));
  }

  /** True when no proxy is trusted: the peer is always the client, and nothing needs reading. */
  get empty(): boolean {
    return this.blocks.length === 0;
  }

  /** Whether `address` (any textual form) is a trusted proxy. */
  contains(address: string): boolean {
    const bytes = parseAddressBytes(address);
    return bytes !== undefined && this.containsBytes(bytes);
  }

  /**
   * The client's address, in the canonical form of `normalizeRemoteAddress`: `peer` unless it is
   * trusted; then the PROXY protocol source (`proxied`, '' when the connection had no PROXY header),
   * then X-Forwarded-For from the right, for as long as the address reached is a trusted proxy. An
   * entry that is not an address ends the walk at the trusted proxy that passed it on (that proxy's
   * bucket, never one the sender picked).
   */
  clientAddress(peer: string, proxied: string, forwardedFor: string | undefined): string {
    if (this.blocks.length === 0) return peer;
    let current = peer;
    let currentBytes = parseAddressBytes(peer);
    if (currentBytes === undefined || !this.containsBytes(currentBytes)) return peer;
    if (proxied !== '') {
      const proxiedBytes = parseAddressBytes(proxied);
      if (proxiedBytes === undefined) return current;
      current = proxied;
      currentBytes = proxiedBytes;
      if (!this.containsBytes(currentBytes)) return current;
    }
    if (forwardedFor === undefined || forwardedFor === '') return current;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1, read = 0; i >= 0 && read < maxForwardedHops; i--, read++) {
      const hopBytes = parseForwardedEntry(hops[i]!);
      if (hopBytes === undefined) return current;
      current = addressFromBytes(hopBytes.buffer as ArrayBuffer);
      if (!this.containsBytes(hopBytes)) return current;
    }
    return current;
  }

  private containsBytes(address: Uint8Array): boolean {
    for (const block of this.blocks) if (blockContains(block, address)) return true;
    return false;
  }
}
