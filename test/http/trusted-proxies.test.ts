/** Specification of the trusted-proxy list and of how the client address is read behind proxies. */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { addressFromBytes } from '../../src/http/remote-address.js';
import { TrustedProxies } from '../../src/http/trusted-proxies.js';

describe('trusted proxies: the list', () => {
  const list = new TrustedProxies(['10.0.0.5', '192.168.0.0/16', '2001:db8:aa::/48', '::1', '172.16.0.0/12']);

  it.each([
    ['10.0.0.5', true],
    ['10.0.0.6', false],
    ['192.168.255.1', true],
    ['192.169.0.1', false],
    ['::ffff:192.168.1.1', true],
    ['172.31.255.255', true],
    ['172.32.0.0', false],
    ['2001:db8:aa:ffff::1', true],
    ['2001:DB8:00AA:0000::7', true],
    ['2001:db8:ab::1', false],
    ['::1', true],
    ['::2', false],
    ['not-an-address', false],
    ['', false],
  ])('%s trusted: %s', (address, expected) => {
    expect(list.contains(address)).toBe(expected);
  });

  it('checks the peer address uWS reports (4 or 16 bytes, as canonical text), remembering verdicts', () => {
    const bytes = (...values: number[]) => addressFromBytes(new Uint8Array(values).buffer);
    expect(list.isTrustedPeer(bytes(10, 0, 0, 5))).toBe(true);
    expect(list.isTrustedPeer(bytes(10, 0, 0, 6))).toBe(false);
    expect(list.isTrustedPeer(bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 3, 4))).toBe(true);
    expect(list.isTrustedPeer(bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9))).toBe(
      true,
    );
    expect(list.isTrustedPeer(bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0xab, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9))).toBe(
      false,
    );
    expect(list.isTrustedPeer(bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1))).toBe(true);
    expect(list.isTrustedPeer(bytes())).toBe(false);
    expect(new TrustedProxies([]).isTrustedPeer(bytes(10, 0, 0, 5))).toBe(false);
    // Asked again (now from memory), the same answers; past the bound it starts over, still right.
    for (let i = 0; i < 5000; i++) expect(list.isTrustedPeer(`198.51.${i >> 8}.${i & 255}`)).toBe(false);
    expect(list.isTrustedPeer('10.0.0.5')).toBe(true);
    expect(list.isTrustedPeer('10.0.0.6')).toBe(false);
  });

  it('0.0.0.0/0 trusts every IPv4 address and no IPv6 one; ::/0 trusts all', () => {
    expect(new TrustedProxies(['0.0.0.0/0']).contains('203.0.113.9')).toBe(true);
    expect(new TrustedProxies(['0.0.0.0/0']).contains('2001:db8::1')).toBe(false);
    expect(new TrustedProxies(['::/0']).contains('2001:db8::1')).toBe(true);
  });

  it.each([
    [
      '10.0.0.0/33',
      /server\.trustedProxies\.0: "10\.0\.0\.0\/33" has an invalid prefix length: use 0-32 for IPv4/,
    ],
    ['2001:db8::/129', /use 0-128 for IPv6/],
    ['10.0.0.256', /is not an IP address or CIDR block/],
    ['proxy.example', /is not an IP address or CIDR block/],
    ['10.0.0.0/', /invalid prefix length/],
    ['10.0.0.0/8/8', /invalid prefix length/],
    ['fe80::1%eth0', /is not an IP address/],
  ])('config refuses %s with a message naming the entry', (entry, message) => {
    expect(() => loadConfig({ env: { VCA_TRUSTED_PROXIES: entry } })).toThrow(message);
  });

  it('config reads VCA_TRUSTED_PROXIES as a comma-separated list and names the bad entry by index', () => {
    const config = loadConfig({ env: { VCA_TRUSTED_PROXIES: '10.0.0.5, 2001:db8::/32' } });
    expect(config.server.trustedProxies).toEqual(['10.0.0.5', '2001:db8::/32']);
    expect(() => loadConfig({ env: { VCA_TRUSTED_PROXIES: '10.0.0.5,bad' } })).toThrow(
      /server\.trustedProxies\.1: "bad"/,
    );
  });
});

describe('trusted proxies: the client address', () => {
  const proxies = new TrustedProxies(['10.0.0.0/8', '2001:db8:ff::/48']);
  const client = (peer: string, forwardedFor?: string, proxied = '') =>
    proxies.clientAddress(peer, proxied, forwardedFor);

  it('an untrusted peer is the client, whatever it claims', () => {
    expect(client('198.51.100.1', '203.0.113.5')).toBe('198.51.100.1');
    expect(client('198.51.100.1', undefined, '203.0.113.5')).toBe('198.51.100.1');
  });

  it('a trusted peer: the right-most X-Forwarded-For entry that is not a trusted proxy', () => {
    expect(client('10.0.0.1', '203.0.113.5')).toBe('203.0.113.5');
    expect(client('10.0.0.1', '203.0.113.5, 10.1.1.1, 10.2.2.2')).toBe('203.0.113.5');
    // The left part is whatever the client sent: spoofed entries are never reached.
    expect(client('10.0.0.1', '1.2.3.4, 10.9.9.9, 203.0.113.5')).toBe('203.0.113.5');
    expect(client('10.0.0.1', '1.2.3.4,203.0.113.5')).toBe('203.0.113.5');
  });

  it('a trusted peer without X-Forwarded-For is the client', () => {
    expect(client('10.0.0.1')).toBe('10.0.0.1');
    expect(client('10.0.0.1', '')).toBe('10.0.0.1');
  });

  it('a chain of trusted proxies only: the left-most entry', () => {
    expect(client('10.0.0.1', '10.0.0.7, 10.0.0.8')).toBe('10.0.0.7');
  });

  it('a malformed entry ends the walk at the trusted proxy that passed it on', () => {
    expect(client('10.0.0.1', 'garbage')).toBe('10.0.0.1');
    expect(client('10.0.0.1', '203.0.113.5, unknown, 10.0.0.9')).toBe('10.0.0.9');
    expect(client('10.0.0.1', '999.1.1.1')).toBe('10.0.0.1');
    expect(client('10.0.0.1', ', ,')).toBe('10.0.0.1');
    expect(client('10.0.0.1', '[2001:db8::1')).toBe('10.0.0.1');
  });

  it('reads ports, brackets and IPv6, canonically', () => {
    expect(client('10.0.0.1', '203.0.113.5:4711')).toBe('203.0.113.5');
    expect(client('10.0.0.1', '2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(client('10.0.0.1', '[2001:db8::1]:443')).toBe('2001:db8::1');
    expect(client('10.0.0.1', '::ffff:203.0.113.5')).toBe('203.0.113.5');
    expect(client('2001:db8:ff::1', '2001:db8:1::9')).toBe('2001:db8:1::9');
  });

  it('the PROXY protocol source comes first, then X-Forwarded-For if that source is itself trusted', () => {
    expect(client('10.0.0.1', undefined, '203.0.113.5')).toBe('203.0.113.5');
    // The PROXY header is written by the trusted proxy; an X-Forwarded-For behind an untrusted source is ignored.
    expect(client('10.0.0.1', '198.51.100.1', '203.0.113.5')).toBe('203.0.113.5');
    expect(client('10.0.0.1', '198.51.100.1', '10.0.0.2')).toBe('198.51.100.1');
  });

  it('with no trusted proxy, always the peer', () => {
    const none = new TrustedProxies([]);
    expect(none.empty).toBe(true);
    expect(none.clientAddress('10.0.0.1', '203.0.113.5', '198.51.100.1')).toBe('10.0.0.1');
  });

  it('property: the answer is the peer or one of the entries, and a client cannot steer it by what it prepends', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const ipv4 = fc.tuple(fc.constantFrom(10, 198, 203), octet, octet, octet).map((parts) => parts.join('.'));
    const untrusted = fc
      .tuple(fc.constantFrom(198, 203), octet, octet, octet)
      .map((parts) => parts.join('.'));
    const entry = fc.oneof(ipv4, fc.constantFrom('unknown', '', ' ', '::1', '[2001:db8:ff::2]:80', 'x:y'));
    fc.assert(
      fc.property(ipv4, fc.array(entry, { maxLength: 6 }), untrusted, (peer, spoofed, real) => {
        const answer = client(peer, spoofed.join(','));
        const candidates = [peer, ...spoofed.map((hop) => hop.trim().replace(/^\[(.*)\]:\d+$/, '$1'))];
        expect(candidates).toContain(answer);
        if (!proxies.contains(peer)) expect(answer).toBe(peer);
        // What a trusted proxy appended last decides; anything the client wrote before it does not.
        expect(client('10.0.0.1', [...spoofed, real].join(','))).toBe(real);
      }),
    );
  });
});
