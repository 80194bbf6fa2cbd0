/**
 * Who the client is when the gateway sits behind proxies (`server.trustedProxies`). Only a peer in the
 * trusted list may speak for someone else: the address its PROXY protocol v2 header carries, then the
 * `X-Forwarded-For` chain read from the right, each hop accepted while the address before it is
 * itself trusted. The first untrusted address met is the client. A peer outside the list is the client,
 * whatever headers it sends (a client cannot choose its own rate-limit bucket).
 *
 * Addresses are compared as four 32-bit words of the 128-bit form (IPv4 as IPv4-mapped IPv6), so
 * `10.0.0.0/8` also covers `::ffff:10.1.2.3`; the verdict on each peer is remembered, so the check
 * every request makes is one map look-up. The list is small (a handful of proxies or subnets); matching is a linear scan
 * of pre-masked words, a few comparisons per entry.
 */

import { formatIpv6, parseIpv6 } from './remote-address.js';

/** Hops of X-Forwarded-For read at most; a longer chain of trusted proxies ends at the last one read. */
const maxForwardedHops = 32;
/** Peers whose verdict is remembered at most. */
const maxRememberedPeers = 4096;

/** The 128-bit address as four unsigned 32-bit words, most significant first. */
type Words = [number, number, number, number];

interface AddressBlock {
  /** The block's address with its host bits cleared. */
  network: Words;
  mask: Words;
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

/** A dotted quad, strictly: four decimal octets 0-255 without leading zeros. */
function ipv4Word(text: string): number | undefined {
  let word = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      if (digits === 0 || dots === 3) return undefined;
      word = word * 256 + octet;
      octet = 0;
      digits = 0;
      dots += 1;
    } else if (code >= 48 && code <= 57) {
      if (digits > 0 && octet === 0) return undefined;
      octet = octet * 10 + (code - 48);
      digits += 1;
      if (octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return word * 256 + octet;
}

/** IPv4 or IPv6 text (no zone) as words, or undefined when it is no address. */
function parseWords(text: string): Words | undefined {
  const v4 = ipv4Word(text);
  if (v4 !== undefined) return [0, 0, 0xffff, v4];
  if (!text.includes(':') || text.includes('%')) return undefined;
  const groups = parseIpv6(text.toLowerCase());
  if (groups === undefined) return undefined;
  return [
    (groups[0]! * 0x10000 + groups[1]!) >>> 0,
    (groups[2]! * 0x10000 + groups[3]!) >>> 0,
    (groups[4]! * 0x10000 + groups[5]!) >>> 0,
    (groups[6]! * 0x10000 + groups[7]!) >>> 0,
  ];
}

/** Canonical text: a dotted quad for IPv4 and IPv4-mapped IPv6, RFC 5952 for the rest. */
function formatWords(words: Words): string {
  const [w0, w1, w2, w3] = words;
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) {
    return `${w3 >>> 24}.${(w3 >>> 16) & 0xff}.${(w3 >>> 8) & 0xff}.${w3 & 0xff}`;
  }
  return formatIpv6([
    w0 >>> 16,
    w0 & 0xffff,
    w1 >>> 16,
    w1 & 0xffff,
    w2 >>> 16,
    w2 & 0xffff,
    w3 >>> 16,
    w3 & 0xffff,
  ]);
}

function maskWords(prefixBits: number): Words {
  const mask: Words = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(32, prefixBits - i * 32));
    mask[i] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  }
  return mask;
}

function parseBlock(entry: string, index: number): AddressBlock {
  const text = entry.trim();
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const words = parseWords(addressText);
  if (words === undefined) {
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
  const mask = maskWords(isV4 ? 96 + prefix : prefix);
  const network = words.map((word, i) => (word & mask[i]!) >>> 0) as Words;
  return { network, mask };
}

/**
 * One X-Forwarded-For entry as an address: `192.0.2.1`, `192.0.2.1:5678`, `2001:db8::1`,
 * `[2001:db8::1]` or `[2001:db8::1]:443` (some proxies add the port). Undefined for anything else
 * (`unknown`, obfuscated identifiers, garbage).
 */
function parseForwardedEntry(entry: string): Words | undefined {
  let text = entry.trim();
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end === -1) return undefined;
    const after = text.slice(end + 1);
    if (after !== '' && !/^:\d{1,5}$/.test(after)) return undefined;
    return parseWords(text.slice(1, end));
  }
  const colon = text.indexOf(':');
  // One colon is IPv4 with a port; more is IPv6 without brackets.
  if (colon !== -1 && colon === text.lastIndexOf(':')) {
    if (!/^\d{1,5}$/.test(text.slice(colon + 1))) return undefined;
    text = text.slice(0, colon);
  }
  return parseWords(text);
}

export class TrustedProxies {
  private readonly blocks: readonly AddressBlock[];
  private readonly peerVerdicts = new Map<string, boolean>();

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
    const words = parseWords(address);
    return words !== undefined && this.containsWords(words);
  }

  /**
   * Whether the peer (canonical text, as `addressFromBytes` writes it) is a trusted proxy: the check
   * every request makes, so answers are remembered (peers are few: the proxies, or direct clients).
   */
  isTrustedPeer(peer: string): boolean {
    if (this.blocks.length === 0) return false;
    const known = this.peerVerdicts.get(peer);
    if (known !== undefined) return known;
    // Bounded: a flood of direct clients empties it now and then, which costs one parse each.
    if (this.peerVerdicts.size >= maxRememberedPeers) this.peerVerdicts.clear();
    const verdict = this.contains(peer);
    this.peerVerdicts.set(peer, verdict);
    return verdict;
  }

  /**
   * The client's address, in the canonical form of `normalizeRemoteAddress`: `peer` unless it is
   * trusted; then the PROXY protocol source (`proxied`, '' when the connection had no PROXY header),
   * then X-Forwarded-For from the right, for as long as the address reached is a trusted proxy. An
   * entry that is not an address ends the walk at the trusted proxy that passed it on (that proxy's
   * bucket, never one the sender picked).
   */
  clientAddress(peer: string, proxied: string, forwardedFor: string | undefined): string {
    if (!this.isTrustedPeer(peer)) return peer;
    let current = peer;
    if (proxied !== '') {
      const proxiedWords = parseWords(proxied);
      if (proxiedWords === undefined) return current;
      current = proxied;
      if (!this.containsWords(proxiedWords)) return current;
    }
    if (forwardedFor === undefined || forwardedFor === '') return current;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1, read = 0; i >= 0 && read < maxForwardedHops; i--, read++) {
      const hop = parseForwardedEntry(hops[i]!);
      if (hop === undefined) return current;
      current = formatWords(hop);
      if (!this.containsWords(hop)) return current;
    }
    return current;
  }

  private containsWords(words: Words): boolean {
    for (const { network, mask } of this.blocks) {
      if (
        (words[0] & mask[0]) >>> 0 === network[0] &&
        (words[1] & mask[1]) >>> 0 === network[1] &&
        (words[2] & mask[2]) >>> 0 === network[2] &&
        (words[3] & mask[3]) >>> 0 === network[3]
      ) {
        return true;
      }
    }
    return false;
  }
}
