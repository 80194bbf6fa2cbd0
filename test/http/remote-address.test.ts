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
