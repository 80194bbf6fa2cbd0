/** Specification of client-address normalization used as the limit key. */

import { describe, expect, it } from 'vitest';
import { normalizeRemoteAddress } from '../../src/http/remote-address.js';

describe('http remote address', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['0000:0000:0000:0000:0000:ffff:7f00:0001', '127.0.0.1'],
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['2001:0DB8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['', ''],
  ])('%s -> %s', (input, expected) => {
    expect(normalizeRemoteAddress(input)).toBe(expected);
  });
});

describe('remote address: from bytes', () => {
  it('reads IPv4, IPv4-mapped IPv6 and plain IPv6 binary addresses as canonical text', async () => {
    const { addressFromBytes } = await import('../../src/http/remote-address.js');
    expect(addressFromBytes(new Uint8Array([127, 0, 0, 2]).buffer)).toBe('127.0.0.2');
    const mapped = new Uint8Array(16);
    mapped.set([0xff, 0xff, 10, 1, 2, 3], 10);
    expect(addressFromBytes(mapped.buffer)).toBe('10.1.2.3');
    const loopback = new Uint8Array(16);
    loopback[15] = 1;
    expect(addressFromBytes(loopback.buffer)).toBe('::1');
    expect(addressFromBytes(new ArrayBuffer(3))).toBe('');
  });
});
