/**
 * The request side of an exchange with uWebSockets.js: copies method, path, query, headers and the
 * client address out of the uWS request before its callback returns (uWS invalidates it then), and
 * buffers the body under a byte limit, answering 413 as soon as a chunked body passes it. Also owns
 * reading that body as JSON (415 for other media types, 400 for malformed JSON or JSON nested deeper
 * than `maxJsonDepth`, refused before any parser sees it).
 */

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { VcaError } from '../errors.js';
import { exceedsJsonDepth, jsonTooDeepError } from '../json-depth.js';
import { addressFromBytes } from './remote-address.js';
import type { Exchange, ReplyWriter } from './reply-writer.js';
import type { TrustedProxies } from './trusted-proxies.js';

/** Everything the handler may read of the uWS request, copied while it is still valid. */
export interface CopiedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  /** The client's address: the peer's, or behind a trusted proxy the one it names (trusted-proxies.ts). */
  readonly remoteAddress: string;
}

/** The body of one request: whether one was announced, and its bytes once they have all arrived. */
export interface RequestBody {
  present: boolean;
  bytes: Promise<Buffer>;
}

/** Rejection reason for a body read that the client aborted; nobody is left to answer. */
export class RequestAbortedError extends Error {
  constructor() {
    super('the client aborted the request');
    this.name = 'RequestAbortedError';
  }
}

const jsonContentTypePattern = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * The client address of a uWS request: the peer, unless it is a trusted proxy; then the PROXY protocol
 * v2 source uWS parsed (empty when the connection had no PROXY header) and X-Forwarded-For decide.
 */
function clientAddress(
  res: HttpResponse,
  headers: Record<string, string>,
  trustedProxies: TrustedProxies | undefined,
): string {
  // The binary form is cheaper than uWS's text form, and normalizes to the same canonical key.
  const peer = addressFromBytes(res.getRemoteAddress());
  if (trustedProxies === undefined || !trustedProxies.isTrustedPeer(peer)) return peer;
  const proxied = addressFromBytes(res.getProxiedRemoteAddress());
  return trustedProxies.clientAddress(peer, proxied, headers['x-forwarded-for']);
}

/** No query string: one shared, never-written instance (nothing in the gateway edits a request's query). */
const emptyQuery = new URLSearchParams();

/**
 * A uWS request copied out of uWS. The client address costs a `getpeername` system call, so it is read
 * on first use only (most requests are rate-limited by their credential and never need it), while the
 * response is still open; once it is answered or aborted the address is unknown ('').
 */
class UwsRequestCopy implements CopiedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Record<string, string>;
  private address: string | undefined;
  private readonly res: HttpResponse;
  private readonly trustedProxies: TrustedProxies | undefined;
  private readonly isOpen: () => boolean;

  constructor(
    res: HttpResponse,
    req: HttpRequest,
    trustedProxies: TrustedProxies | undefined,
    isOpen: () => boolean,
  ) {
    const headers: Record<string, string> = {};
    req.forEach((name, value) => {
      const previous = headers[name];
      headers[name] = previous === undefined ? value : `${previous}, ${value}`;
    });
    const query = req.getQuery();
    this.method = req.getMethod().toUpperCase();
    this.path = req.getUrl();
    this.query = query ? new URLSearchParams(query) : emptyQuery;
    this.headers = headers;
    this.res = res;
    this.trustedProxies = trustedProxies;
    this.isOpen = isOpen;
  }

  get remoteAddress(): string {
    if (this.address === undefined) {
      if (!this.isOpen()) return '';
      this.address = clientAddress(this.res, this.headers, this.trustedProxies);
    }
    return this.address;
  }
}

/**
 * Copies the request out of uWS; `req` is invalid once the uWS callback returns. `isOpen` says whether
 * `res` may still be touched (not answered, not aborted): the client address is read lazily from it.
 */
export function copyRequest(
  res: HttpResponse,
  req: HttpRequest,
  trustedProxies: TrustedProxies | undefined,
  isOpen: () => boolean,
): CopiedRequest {
  return new UwsRequestCopy(res, req, trustedProxies, isOpen);
}

/** True when body bytes may follow the headers: until they are read, an early answer must close. */
export function announcesBody(headers: Record<string, string>): boolean {
  const contentLength = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (contentLength !== undefined && contentLength !== '0');
}

/** Parses `content-length`; a value uWS let through that is not a plain decimal is the client's fault. */
function parseContentLength(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value))
    throw new VcaError('VCA_ERR_VALIDATION', 'The content-length header is not a number');
  return Number(value);
}

/** 413 for a body past `limit` bytes. */
export function bodyTooLarge(limit: number, declared?: number): VcaError {
  const detail =
    declared === undefined
      ? `The body exceeds the limit of ${limit} bytes`
      : `The body is ${declared} bytes; the limit is ${limit}`;
  return new VcaError('VCA_ERR_BODY_TOO_LARGE', detail, { limitBytes: limit });
}

/**
 * What a request's head says of its body, for both listeners' readers: throws 400 for a malformed
 * content-length and 413 for one over `limit`; false when the request carries no body.
 */
export function declaresBody(headers: Record<string, string>, limit: number): boolean {
  const contentLength = parseContentLength(headers['content-length']);
  if (contentLength !== undefined && contentLength > limit) throw bodyTooLarge(limit, contentLength);
  return headers['transfer-encoding'] !== undefined || (contentLength !== undefined && contentLength > 0);
}

/**
 * Starts buffering the body now: uWS only delivers body chunks to an `onData` registered before the
 * handler returns. Throws 413 at once for a content-length over `limit` bytes; a chunked body that
 * passes the limit is answered 413 by `writer` at that moment and its read rejects.
 */
export function startBodyReader(
  exchange: Exchange,
  headers: Record<string, string>,
  limit: number,
  writer: ReplyWriter,
): RequestBody {
  if (!declaresBody(headers, limit)) return { present: false, bytes: Promise.resolve(Buffer.alloc(0)) };
  const bytes = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let failed = false;
    exchange.onAbort = () => reject(new RequestAbortedError());
    exchange.res.onData((chunk, isLast) => {
      if (failed) return;
      received += chunk.byteLength;
      if (received > limit) {
        failed = true;
        const err = bodyTooLarge(limit);
        reject(err);
        // Answer now rather than when the handler gets round to it, and close: the rest is never read.
        writer.respondError(exchange, err, undefined);
        return;
      }
      if (isLast && chunks.length === 0) {
        // The whole body in one chunk (small bodies): one copy, no list and no concatenation.
        // uWS reuses the chunk's memory once this callback returns: ArrayBuffer.slice copies it.
        exchange.bodyComplete = true;
        resolve(Buffer.from(chunk.slice(0)));
        return;
      }
      // uWS reuses the chunk's memory once this callback returns: copy it (Buffer.from(Uint8Array) copies).
      if (chunk.byteLength > 0) chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (isLast) {
        exchange.bodyComplete = true;
        resolve(Buffer.concat(chunks, received));
      }
    });
  });
  // A handler that never reads the body must not turn its failure into an unhandled rejection.
  bytes.catch(() => {});
  return { present: true, bytes };
}

/** The body parsed as JSON; `undefined` when there is none. */
export async function readJsonBody(body: RequestBody, contentType: string | undefined): Promise<unknown> {
  if (body.present && (contentType === undefined || !jsonContentTypePattern.test(contentType))) {
    throw new VcaError(
      'VCA_ERR_UNSUPPORTED_MEDIA_TYPE',
      `Send the body with content-type application/json, not ${contentType ?? 'none'}`,
    );
  }
  const bytes = await body.bytes;
  if (bytes.length === 0) return undefined;
  // Before parsing: what reads the parsed value may recurse, and a deep enough value overflows its stack.
  if (exceedsJsonDepth(bytes)) throw jsonTooDeepError('body');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new VcaError('VCA_ERR_MALFORMED_JSON', `The body is not valid JSON: ${(err as Error).message}`);
  }
}
