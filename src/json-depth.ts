/**
 * The nesting-depth cap on JSON the gateway reads (request bodies, WebSocket messages). `JSON.parse`
 * itself copes with thousands of levels, but code after it that walks a value recursively (schema
 * checks, webhook parsers) would overflow the stack, so an over-deep text is refused before any
 * parser sees it. The scan is one pass over the bytes already buffered, with no recursion and no
 * allocation; it stops at the first level past the cap.
 */

import { VcaError } from './errors.js';

/** Deepest nesting of arrays and objects accepted; real bodies and messages nest 4 or 5 levels. */
export const maxJsonDepth = 64;

/** What each byte is to the scan; every other byte (and all of a multi-byte UTF-8 sequence, >= 0x80) is 0. */
const other = 0;
const quote = 1;
const backslash = 2;
const opening = 3;
const closing = 4;
const byteClass = new Uint8Array(256);
byteClass[0x22] = quote; // "
byteClass[0x5c] = backslash; // \
byteClass[0x5b] = opening; // [
byteClass[0x7b] = opening; // {
byteClass[0x5d] = closing; // ]
byteClass[0x7d] = closing; // }

/**
 * True when the JSON text opens more than `maxDepth` arrays or objects inside one another. Brackets
 * inside strings do not count. Malformed text is not judged here (`JSON.parse` refuses it afterwards):
 * the scan only bounds the work. Reads UTF-8 bytes (a request body as buffered) or, for callers that
 * hold decoded text, a string (encoded first).
 */
export function exceedsJsonDepth(text: Uint8Array | string, maxDepth = maxJsonDepth): boolean {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const length = bytes.length;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < length; i += 1) {
    const kind = byteClass[bytes[i] as number];
    if (kind === other) continue;
    if (inString) {
      // An escape swallows the next byte, so `\"` never ends the string.
      if (kind === backslash) i += 1;
      else if (kind === quote) inString = false;
    } else if (kind === quote) {
      inString = true;
    } else if (kind === opening) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if (kind === closing) {
      depth -= 1;
    }
  }
  return false;
}

/** The 400 for JSON nested deeper than `maxJsonDepth`, in a request body or a WebSocket message. */
export function jsonTooDeepError(what: 'body' | 'message'): VcaError {
  return new VcaError(
    'VCA_ERR_VALIDATION',
    `The ${what} nests arrays and objects more than ${maxJsonDepth} levels deep; send a flatter document`,
    { maxDepth: maxJsonDepth },
  );
}
