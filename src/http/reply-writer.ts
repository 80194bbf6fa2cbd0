/**
 * The response side of every HTTP exchange with uWebSockets.js: registers `onAborted` before anything
 * can await, answers each exchange at most once (a `Reply` or a problem+json error), writes status,
 * headers and body inside one `res.cork` (writes may follow an await), and counts exchanges in flight
 * so a graceful close can wait for them.
 */

import type { HttpResponse } from 'uWebSockets.js';
import { STATUS_CODES } from 'node:http';
import type { Logger } from 'pino';
import { isVcaError, type VcaError } from '../errors.js';
import type { Reply } from './handler-api.js';
import { problemBody, problemContentType, problemHeaders, toPublicError } from './problem.js';

/** Per-response bookkeeping; `res` must never be touched once `aborted` or `responded` is set. */
export interface Exchange {
  readonly res: HttpResponse;
  aborted: boolean;
  responded: boolean;
  /** False while request body bytes may still arrive; replying then must close the connection. */
  bodyComplete: boolean;
  onAbort: (() => void) | undefined;
  /**
   * A HEAD request: the reply goes out with its headers and content-length but without its body. In
   * uWS v20.30 the connection then ends: a request pipelined behind a HEAD is not answered.
   */
  head?: boolean;
}

/** Where a failed request was going, for the log line. */
export interface RequestLine {
  method: string;
  path: string;
}

/** A reply in wire form, checked so that writing it cannot corrupt the response. */
export interface PreparedReply {
  status: number;
  headers: [string, string][];
  payload: string | Buffer | undefined;
}

/** Logs an error that is not a `VcaError` and hands it to the server's `onError` hook. */
export type ReportUnexpected = (err: unknown, bindings: Record<string, unknown>) => void;

export interface ReplyWriterOptions {
  logger: Logger;
  reportUnexpected: ReportUnexpected;
  /** True once the server is closing: every reply then ends its keep-alive connection. */
  isClosing: () => boolean;
}

const statusLines = new Map<number, string>();

/** `201 Created`; built once per status code. */
function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    statusLines.set(status, line);
  }
  return line;
}

function hasHeaderInjection(text: string): boolean {
  return /[\r\n\0]/.test(text);
}

/** Turns a route's `Reply` into wire form; throws (-> 500) on anything that would corrupt the response. */
export function prepareReply(reply: Reply): PreparedReply {
  const { status } = reply;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new Error(`handler replied with invalid status ${String(status)}`);
  }
  const headers: [string, string][] = [];
  let headerContentType: string | undefined;
  const replyHeaders = reply.headers;
  for (const name in replyHeaders) {
    const value = replyHeaders[name]!;
    const lowerName = name.toLowerCase();
    if (hasHeaderInjection(name) || hasHeaderInjection(value)) {
      throw new Error(`handler replied with an unsafe header ${JSON.stringify(name)}`);
    }
    // uWS writes content-length itself; a second one would corrupt the response.
    if (lowerName === 'content-length' || lowerName === 'transfer-encoding') continue;
    if (lowerName === 'content-type') {
      headerContentType = value;
      continue;
    }
    headers.push([lowerName, value]);
  }
  let payload: string | Buffer | undefined;
  let defaultContentType: string | undefined;
  if (reply.rawBody !== undefined) {
    payload = reply.rawBody;
    defaultContentType =
      typeof payload === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream';
  } else if (reply.body !== undefined) {
    payload = JSON.stringify(reply.body);
    defaultContentType = 'application/json';
  }
  const contentType = reply.contentType ?? headerContentType ?? defaultContentType;
  if (contentType !== undefined) {
    if (hasHeaderInjection(contentType)) throw new Error('handler replied with an unsafe content type');
    headers.push(['content-type', contentType]);
  }
  return { status, headers, payload };
}

function problemReply(err: VcaError): PreparedReply {
  const headers = Object.entries(problemHeaders(err));
  headers.push(['content-type', problemContentType]);
  return { status: err.status, headers, payload: JSON.stringify(problemBody(err)) };
}

export class ReplyWriter {
  private readonly logger: Logger;
  private readonly reportUnexpected: ReportUnexpected;
  private readonly isClosing: () => boolean;
  private inFlight = 0;
  private inFlightDrained: (() => void) | undefined;

  constructor(options: ReplyWriterOptions) {
    this.logger = options.logger;
    this.reportUnexpected = options.reportUnexpected;
    this.isClosing = options.isClosing;
  }

  /** Opens the exchange for `res`; call it first thing in the uWS callback, before any await. */
  begin(res: HttpResponse): Exchange {
    const exchange: Exchange = {
      res,
      aborted: false,
      responded: false,
      bodyComplete: true,
      onAbort: undefined,
    };
    this.inFlight += 1;
    // Registered before anything can await: uWS frees `res` on abort and any later write would crash.
    // `aborted` is set before `onAbort` runs, so whoever its rejection reaches sees nobody is left to answer.
    res.onAborted(() => {
      exchange.aborted = true;
      exchange.onAbort?.();
      this.finish(exchange);
    });
    return exchange;
  }

  /** Counts an exchange out of the in-flight total once, whether it was answered, upgraded or aborted. */
  finish(exchange: Exchange): void {
    if (exchange.responded) return;
    exchange.responded = true;
    this.inFlight -= 1;
    if (this.inFlight === 0) this.inFlightDrained?.();
  }

  /** Resolves once no exchange is in flight, or after `graceMs`, whichever comes first. */
  async drain(graceMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.inFlightDrained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Answers with the problem+json form of `err`; anything but a `VcaError` is reported and becomes a 500. */
  respondError(exchange: Exchange, err: unknown, request: RequestLine | undefined): void {
    if (exchange.aborted) {
      this.logger.debug({ method: request?.method, path: request?.path }, 'client aborted the request');
      return;
    }
    if (!isVcaError(err)) this.reportUnexpected(err, { method: request?.method, path: request?.path });
    this.write(exchange, problemReply(toPublicError(err)));
  }

  write(exchange: Exchange, reply: PreparedReply): void {
    if (exchange.aborted || exchange.responded) return;
    // A body still arriving would be parsed as the next request; while closing, keep-alive must end too.
    const closeConnection = !exchange.bodyComplete || this.isClosing();
    const { res } = exchange;
    this.finish(exchange);
    // Writes may happen after an await, outside uWS's implicit cork: cork so status, headers and body
    // go out in one syscall (and uWS does not warn about uncorked writes).
    res.cork(() => {
      res.writeStatus(statusLine(reply.status));
      for (const [name, value] of reply.headers) res.writeHeader(name, value);
      if (exchange.head === true) {
        const length = reply.payload === undefined ? 0 : Buffer.byteLength(reply.payload);
        res.endWithoutBody(length, closeConnection);
      } else if (
        reply.payload === undefined &&
        !closeConnection &&
        (reply.status === 204 || reply.status === 304)
      ) {
        // Called with no arguments on purpose: v20.30 turns an explicit `undefined` length into
        // `Content-Length: 9223372036854775808`; with none it writes no content-length, as 204 requires.
        res.endWithoutBody();
      } else {
        res.end(reply.payload ?? '', closeConnection);
      }
    });
  }
}
