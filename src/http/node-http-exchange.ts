/**
 * The adapter between node:http and the handler API (`handler-api.ts`), used by the admin listener:
 * copies a node:http request into what the uWS reader copies (headers lower-cased and repeated ones
 * joined with ', ', the same canonical client address), buffers its body under a byte limit, and
 * writes a prepared `Reply` to a node:http response. Route code sees the same `RequestContext` on both
 * listeners, so one declared route and one pipeline serve both.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { VcaError } from '../errors.js';
import { normalizeRemoteAddress } from './remote-address.js';
import type { PreparedReply } from './reply-writer.js';
import {
  bodyTooLarge,
  type CopiedRequest,
  declaresBody,
  RequestAbortedError,
  type RequestBody,
} from './request-reader.js';

/** The request target as uWS hands it over: path and query of an origin-form or absolute-form target. */
function splitTarget(target: string): { path: string; query: string } {
  let pathAndQuery = target;
  if (!target.startsWith('/')) {
    // absolute-form (`GET http://host/readyz`), which proxies may send; anything else fails in the router.
    try {
      const url = new URL(target);
      pathAndQuery = url.pathname + url.search;
    } catch {
      return { path: target, query: '' };
    }
  }
  const mark = pathAndQuery.indexOf('?');
  if (mark === -1) return { path: pathAndQuery, query: '' };
  return { path: pathAndQuery.slice(0, mark), query: pathAndQuery.slice(mark + 1) };
}

/**
 * Copies method, path, query, headers and client address out of `req`. Headers come from `rawHeaders`
 * so a repeated header is joined like the uWS reader joins it (node:http would keep only the first
 * `authorization`, and the two listeners would then disagree about credentials).
 */
export function copyNodeRequest(req: IncomingMessage): CopiedRequest {
  const headers: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const previous = headers[name];
    headers[name] = previous === undefined ? raw[i + 1]! : `${previous}, ${raw[i + 1]!}`;
  }
  const { path, query } = splitTarget(req.url ?? '/');
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    path,
    query: new URLSearchParams(query),
    headers,
    remoteAddress: normalizeRemoteAddress(req.socket.remoteAddress ?? ''),
  };
}

/** The body of a node:http request being buffered; `complete` once every byte has arrived. */
export interface NodeRequestBody extends RequestBody {
  readonly complete: () => boolean;
}

/**
 * Starts buffering the body of `req` at once, as the uWS reader does. Throws 413 at once for a
 * content-length over `limit` (node:http has already refused a malformed one with 400); a chunked
 * body that passes the limit rejects its read and is handed to `onTooLarge` to answer now.
 */
export function startNodeBodyReader(
  req: IncomingMessage,
  headers: Record<string, string>,
  limit: number,
  onTooLarge: (err: VcaError) => void,
): NodeRequestBody {
  if (!declaresBody(headers, limit)) {
    return { present: false, bytes: Promise.resolve(Buffer.alloc(0)), complete: () => true };
  }
  let ended = false;
  const bytes = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      received += chunk.byteLength;
      if (received > limit) {
        failed = true;
        const err = bodyTooLarge(limit);
        reject(err);
        onTooLarge(err);
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      ended = true;
      if (!failed) resolve(Buffer.concat(chunks, received));
    });
    req.once('close', () => {
      if (!ended) reject(new RequestAbortedError());
    });
  });
  // A handler that never reads the body must not turn its failure into an unhandled rejection.
  bytes.catch(() => {});
  return { present: true, bytes, complete: () => ended };
}

/**
 * Writes `reply` once; nothing when the response already went out or the client is gone.
 * `closeConnection` ends keep-alive (a body still arriving, or the listener closing).
 */
export function writeNodeReply(res: ServerResponse, reply: PreparedReply, closeConnection: boolean): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  res.statusCode = reply.status;
  for (const [name, value] of reply.headers) res.appendHeader(name, value);
  if (closeConnection) res.setHeader('connection', 'close');
  if (reply.payload === undefined && (reply.status === 204 || reply.status === 304)) {
    res.end();
    return;
  }
  const payload = reply.payload ?? '';
  res.setHeader('content-length', Buffer.byteLength(payload));
  // On HEAD node:http sends the head with this content-length and leaves the body out.
  res.end(payload);
}
