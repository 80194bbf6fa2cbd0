/** Normalizes the peer addresses uWS reports into the canonical text used as rate-limit and connection keys. */

const ipv4Pattern = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * uWS formats IPv6 peers fully expanded (`0000:0000:0000:0000:0000:ffff:7f00:0001`); others write
 * `::ffff:127.0.0.1`. Both IPv4-mapped forms become `127.0.0.1`; other IPv6 addresses become RFC 5952
 * text (`::1`), so one client always maps to one key.
 */
export function normalizeRemoteAddress(text: string): string {
  const address = text.trim().toLowerCase();
  if (address === '' || ipv4Pattern.test(address)) return address;
  const groups = parseIpv6(address);
  if (groups === undefined) return address;
  const isV4Mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (isV4Mapped) {
    const high = groups[6]!;
    const low = groups[7]!;
    return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  }
  return formatIpv6(groups);
}

/** The eight 16-bit groups of IPv6 text (`::`, an embedded dotted quad and a `%zone` allowed), or undefined. */
export function parseIpv6(address: string): number[] | undefined {
  const zone = address.indexOf('%');
  const withoutZone = zone === -1 ? address : address.slice(0, zone);
  const halves = withoutZone.split('::');
  if (halves.length > 2) return undefined;
  const parseHalf = (half: string | undefined): number[] | undefined => {
    if (half === undefined || half === '') return [];
    const out: number[] = [];
    const parts = half.split(':');
    for (const [index, part] of parts.entries()) {
      if (index === parts.length - 1 && ipv4Pattern.test(part)) {
        const octets = part.split('.').map(Number);
        if (octets.some((octet) => octet > 255)) return undefined;
        out.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!);
      } else if (/^[0-9a-f]{1,4}$/.test(part)) {
        out.push(Number.parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = parseHalf(halves[0]);
  const tail = parseHalf(halves[1]);
  if (head === undefined || tail === undefined) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  const groups = head;
  for (let i = 0; i < missing; i++) groups.push(0);
  for (const group of tail) groups.push(group);
  return groups;
}

/** RFC 5952: lower-case hex, no leading zeros, the longest run (>= 2) of zero groups as `::`. */
export function formatIpv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < groups.length; ) {
    if (groups[start] !== 0) {
      start += 1;
      continue;
    }
    let end = start;
    while (end < groups.length && groups[end] === 0) end += 1;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestLength < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/**
 * The same canonical text from the peer's binary address (4 or 16 bytes, as uWS `getRemoteAddress`
 * returns it), without the text round trip: IPv4 and IPv4-mapped IPv6 become dotted quads.
 */
export function addressFromBytes(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) return '';
  let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) if (bytes[i] !== 0) mapped = false;
  if (mapped) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  return formatIpv6(groups);
}
