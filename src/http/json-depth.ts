/**
 * The nesting-depth cap on JSON the gateway reads (request bodies, WebSocket messages). `JSON.parse`
 * itself copes with thousands of levels, but code after it that walks a value recursively (schema
 * checks, webhook parsers) would overflow the stack, so an over-deep text is refused before any
 * parser sees it. The scan is one pass over the text with no recursion and no allocation.
 */

import { VcaError } from '../errors.js';

/** Deepest nesting of arrays and objects accepted; real bodies and messages nest 4 or 5 levels. */
export const maxJsonDepth = 64;

const quote = 0x22; // "
const backslash = 0x5c; // \
const openBracket = 0x5b; // [
const closeBracket = 0x5d; // ]
const openBrace = 0x7b; // {
const closeBrace = 0x7d; // }

/**
 * True when `text` opens more than `maxDepth` arrays or objects inside one another. Brackets inside
 * strings do not count. Malformed text is not judged here (`JSON.parse` refuses it afterwards), so the
 * answer for it only bounds the work. Works on UTF-8 bytes or a decoded string alike: the structural
 * characters are ASCII and no byte of a multi-byte UTF-8 sequence is below 0x80.
 */
export function exceedsJsonDepth(text: string | Uint8Array, maxDepth = maxJsonDepth): boolean {
  const isString = typeof text === 'string';
  const length = text.length;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < length; i += 1) {
    const code = isString ? text.charCodeAt(i) : (text[i] as number);
    if (inString) {
      // An escape swallows the next character, so `\"` never ends the string.
      if (code === backslash) i += 1;
      else if (code === quote) inString = false;
    } else if (code === quote) {
      inString = true;
    } else if (code === openBracket || code === openBrace) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if (code === closeBracket || code === closeBrace) {
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
