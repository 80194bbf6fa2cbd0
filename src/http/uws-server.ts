/**
 * The one adapter over uWebSockets.js: routing, bounded request bodies, problem+json errors, per-address
 * limits, JSON WebSockets and graceful close. Route code sees plain `RequestContext`/`Reply` objects and
 * never a uWS `HttpResponse`, `HttpRequest` or `WebSocket`.
 */

import type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket,
  us_socket,
  us_socket_context_t,
  WebSocket,
} from 'uWebSockets.js';
import uws from 'uWebSockets.js';
import { STATUS_CODES } from 'node:http';
import type { Logger } from 'pino';
import { isVcaError, VcaError } from '../errors.js';
import { problemBody, problemContentType, problemHeaders, toPublicError } from './problem.js';
import { RateLimiter } from './rate-limiter.js';
import { addressFromBytes } from './remote-address.js';
import { Router } from './router.js';

export interface HttpLimits {
  /** Largest accepted request body; larger ones get 413 before (content-length) or while (chunked) buffering. */
  maxBodyBytes: number;
  /** Largest accepted WebSocket message; uWS closes the socket on a larger one. */
  maxWsPayloadBytes: number;
  /** A WebSocket silent this long is closed by uWS (it sends pings automatically). */
  wsIdleTimeoutSeconds: number;
  /** Concurrent WebSockets per client address. */
  maxConnectionsPerAddress: number;
  /** Sustained HTTP requests (upgrades included) per second per client address. */
  requestsPerSecondPerAddress: number;
  /** Requests a client address may make in a burst above the sustained rate. */
  requestBurst: number;
  /** Bytes queued for a WebSocket above which messages are dropped and the slow consumer is closed. */
  wsMaxBackpressureBytes: number;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** What a route sees of a request; everything is copied out of uWS before the handler runs. */
export interface RequestContext {
  method: string;
  /** The raw path, still percent-encoded; `params` holds the decoded segments. */
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Lower-case header names; repeated headers are joined with ', '. */
  headers: Record<string, string>;
  remoteAddress: string;
  /** The body as JSON, `undefined` when there is none; 415 when not JSON-typed, 400 when malformed. */
  readJson(): Promise<unknown>;
  /** The body bytes (empty when there is none), at most `maxBodyBytes`. */
  readRaw(): Promise<Buffer>;
}

export type UpgradeContext = Omit<RequestContext, 'readJson' | 'readRaw'>;

export interface Reply {
  status: number;
  /** Serialized as JSON with `content-type: application/json`. */
  body?: unknown;
  /** Sent as-is; `contentType` defaults to text/plain for strings and application/octet-stream for Buffers. */
  rawBody?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
}

export type RouteHandler = (ctx: RequestContext) => Reply | Promise<Reply>;

export interface WsSession<U> {
  readonly data: U;
  /** Sends `message` as JSON text; false when the socket is closed or the message was dropped for backpressure. */
  send(message: object): boolean;
  close(code?: number, reason?: string): void;
  readonly remoteAddress: string;
  readonly closed: boolean;
}

export interface WsRoute<U> {
  /** Decides whether to accept the upgrade and what the session carries; throw a `VcaError` to refuse. */
  upgrade(ctx: UpgradeContext): U | Promise<U>;
  open?(session: WsSession<U>): void;
  /** Called with each parsed JSON message, one at a time per socket, in arrival order. */
  message(session: WsSession<U>, message: unknown): void | Promise<void>;
  close?(session: WsSession<U>, code: number): void;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  limits: HttpLimits;
  logger: Logger;
  /** Called with every unexpected (non-`VcaError`) error a handler throws, after it is logged. */
  onError?: (err: unknown) => void;
  /** Milliseconds clock for rate limiting; defaults to `Date.now`. */
  now?: () => number;
  /** How long `close()` waits for in-flight HTTP requests before tearing connections down. */
  closeGraceMs?: number;
}

/** `app.close()` exists in the v20.30 native binding but not in its typings. */
type ClosableApp = TemplatedApp & { close(): void };

/** The uWS `send` result meaning the message was dropped because backpressure exceeded `maxBackpressure`. */
const wsSendDropped = 2;
/** Messages waiting for a socket's previous message handler to finish before the client is cut off. */
const maxQueuedWsMessages = 64;
/** RFC 6455 limits a close reason to 123 bytes. */
const maxCloseReasonBytes = 123;
const jsonContentTypePattern = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** Throws when uWebSockets.js loaded its slow pure-JS fallback instead of the native binary. */
export function assertNativeUws(): void {
  if (typeof (uws as { getParts?: unknown }).getParts !== 'function') {
    throw new Error(
      'uWebSockets.js is running its pure-JS fallback, not the native binary: refusing to start. ' +
        `Use a Node.js version the package ships a binary for (this is ${process.platform}-${process.arch}, ` +
        `ABI ${process.versions.modules}) and unset UWS_USE_FALLBACK.`,
    );
  }
}

/** Per-response bookkeeping; `res` must never be touched once `aborted` or `responded` is set. */
interface Exchange {
  readonly res: HttpResponse;
  aborted: boolean;
  responded: boolean;
  /** False while request body bytes may still arrive; replying then must close the connection. */
  bodyComplete: boolean;
  onAbort: (() => void) | undefined;
}

interface CopiedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  remoteAddress: string;
}

interface PreparedReply {
  status: number;
  headers: [string, string][];
  payload: string | Buffer | undefined;
}

/** Rejection reason for a body read that the client aborted; nobody is left to answer. */
class RequestAbortedError extends Error {
  constructor() {
    super('the client aborted the request');
    this.name = 'RequestAbortedError';
  }
}

/** A connection slot counted against an address until released exactly once. */
interface ConnectionSlot {
  readonly address: string;
  released: boolean;
}

/** What uWS stores as a WebSocket's user data: the route and the session built on open. */
interface SocketHolder {
  readonly route: WsRoute<unknown>;
  readonly data: unknown;
  readonly slot: ConnectionSlot;
  session: UwsSession<unknown> | undefined;
}

class UwsSession<U> implements WsSession<U> {
  private isClosed = false;
  private isEnding = false;
  /** Serializes message handlers so a socket's messages are handled in arrival order. */
  queue: Promise<void> = Promise.resolve();
  queued = 0;

  constructor(
    private readonly socket: WebSocket<SocketHolder>,
    readonly data: U,
    readonly remoteAddress: string,
  ) {}

  get closed(): boolean {
    return this.isClosed || this.isEnding;
  }

  send(message: object): boolean {
    if (this.closed) return false;
    const text = JSON.stringify(message);
    let result = 0;
    // Sends from timers or after awaits are outside uWS's own cork; corking batches the frame into one syscall.
    this.socket.cork(() => {
      result = this.socket.send(text, false);
    });
    if (result === wsSendDropped) {
      // The client missed a message, so its view of the session is wrong: cut it off rather than let it drift.
      this.close(1013, 'slow consumer');
      return false;
    }
    return true;
  }

  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.isEnding = true;
    // end() runs the close handler synchronously; the uWS socket is invalid afterwards.
    this.socket.end(code, truncateUtf8(reason, maxCloseReasonBytes));
  }

  /** Called from uWS's close handler: from here on the uWS socket must not be touched. */
  markClosed(): void {
    this.isClosed = true;
  }
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  return new TextDecoder().decode(bytes.subarray(0, maxBytes)).replace(/\uFFFD$/, '');
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

function hasHeaderInjection(text: string): boolean {
  return /[\r\n\0]/.test(text);
}

/** Turns a route's `Reply` into wire form; throws (-> 500) on anything that would corrupt the response. */
function prepareReply(reply: Reply): PreparedReply {
  const { status } = reply;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new Error(`handler replied with invalid status ${String(status)}`);
  }
  const headers: [string, string][] = [];
  let headerContentType: string | undefined;
  for (const [name, value] of Object.entries(reply.headers ?? {})) {
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

/** Parses `content-length`; a value uWS let through that is not a plain decimal is the client's fault. */
function parseContentLength(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value))
    throw new VcaError('VCA_ERR_VALIDATION', 'The content-length header is not a number');
  return Number(value);
}

export class HttpServer {
  private readonly app: ClosableApp;
  private readonly host: string;
  private readonly port: number;
  private readonly limits: HttpLimits;
  private readonly logger: Logger;
  private readonly onError: ((err: unknown) => void) | undefined;
  private readonly closeGraceMs: number;
  private readonly routes = new Router<RouteHandler>();
  private readonly wsRoutes = new Router<WsRoute<unknown>>();
  private readonly rateLimiter: RateLimiter;
  private readonly connectionsByAddress = new Map<string, number>();
  private readonly sessions = new Set<UwsSession<unknown>>();
  private listenSocket: us_listen_socket | undefined;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private inFlight = 0;
  private inFlightDrained: (() => void) | undefined;

  constructor(options: HttpServerOptions) {
    assertNativeUws();
    this.host = options.host;
    this.port = options.port;
    this.limits = options.limits;
    this.logger = options.logger.child({ component: 'http' });
    this.onError = options.onError;
    this.closeGraceMs = options.closeGraceMs ?? 5_000;
    this.rateLimiter = new RateLimiter({
      ratePerSecond: options.limits.requestsPerSecondPerAddress,
      burst: options.limits.requestBurst,
      now: options.now ?? Date.now,
    });
    this.app = uws.App() as ClosableApp;
    // Every upgrade request lands here and is routed by our router; plain GETs on '/*' are yielded by uWS
    // (no sec-websocket-key) to the HTTP catch-all below.
    this.app.ws<SocketHolder>('/*', {
      maxPayloadLength: options.limits.maxWsPayloadBytes,
      idleTimeout: options.limits.wsIdleTimeoutSeconds,
      maxBackpressure: options.limits.wsMaxBackpressureBytes,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.onUpgrade(res, req, context),
      open: (socket) => this.onWsOpen(socket),
      message: (socket, message, isBinary) => this.onWsMessage(socket, message, isBinary),
      close: (socket, code) => this.onWsClose(socket, code),
    });
    this.app.any('/*', (res, req) => this.onHttpRequest(res, req));
  }

  route(method: HttpMethod, pattern: string, handler: RouteHandler): void {
    this.routes.add(method, pattern, handler);
  }

  websocket<U>(pattern: string, route: WsRoute<U>): void {
    this.wsRoutes.add('GET', pattern, route as WsRoute<unknown>);
    // A plain GET on a WebSocket path is a known route that needs an upgrade, not a 404.
    this.routes.add('GET', pattern, () => {
      throw new VcaError('VCA_ERR_VALIDATION', 'This route only accepts WebSocket upgrades');
    });
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    if (this.closing) return Promise.reject(new Error('the HTTP server is closed'));
    if (this.listenSocket !== undefined)
      return Promise.reject(new Error('the HTTP server is already listening'));
    return new Promise((resolve, reject) => {
      this.app.listen(this.host, this.port, (listenSocket) => {
        if (listenSocket === false) {
          reject(new Error(`could not listen on ${this.host}:${this.port}`));
          return;
        }
        this.listenSocket = listenSocket;
        const port = uws.us_socket_local_port(listenSocket as unknown as us_socket);
        this.logger.info({ host: this.host, port }, 'http server listening');
        resolve(port);
      });
    });
  }

  /**
   * Stops accepting connections, sends `{type:'shutdown'}` to every WebSocket and closes it with 1001,
   * waits up to `closeGraceMs` for in-flight HTTP requests, then closes every remaining connection.
   */
  close(): Promise<void> {
    if (this.closePromise === undefined) this.closePromise = this.shutdown();
    return this.closePromise;
  }

  /** Open WebSockets (uWS v20.30 has no per-connection hook for plain HTTP). */
  get connections(): number {
    return this.sessions.size;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    if (this.listenSocket !== undefined) {
      uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
    for (const session of [...this.sessions]) {
      session.send({ type: 'shutdown' });
      session.close(1001, 'going away');
    }
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.closeGraceMs);
        this.inFlightDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    // One loop turn lets uWS flush the close frames it just queued before the sockets go away.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.app.close();
    this.logger.info('http server closed');
  }

  private onHttpRequest(res: HttpResponse, req: HttpRequest): void {
    const exchange = this.beginExchange(res);
    try {
      // req is only valid until this function returns: copy everything out of it now.
      const copied = this.copyRequest(res, req);
      // Until the body is read, any early answer (404, 429, 413...) must close the connection.
      exchange.bodyComplete = !announcesBody(copied.headers);
      this.admit(copied.remoteAddress);
      const match = this.routes.match(copied.method, copied.path);
      if (match.kind === 'not-found') {
        throw new VcaError('VCA_ERR_ROUTE_NOT_FOUND', `No route for ${copied.path}`);
      }
      if (match.kind === 'method-not-allowed') {
        throw new VcaError('VCA_ERR_METHOD_NOT_ALLOWED', `${copied.path} does not accept ${copied.method}`, {
          allow: match.allow,
        });
      }
      const body = this.startBodyReader(exchange, copied.headers);
      const ctx: RequestContext = {
        ...copied,
        params: match.params,
        readRaw: () => body.bytes,
        readJson: () => readJsonBody(body, copied.headers['content-type']),
      };
      void this.runHandler(exchange, copied, match.value, ctx);
    } catch (err) {
      this.respondError(exchange, err, undefined);
    }
  }

  private async runHandler(
    exchange: Exchange,
    copied: CopiedRequest,
    handler: RouteHandler,
    ctx: RequestContext,
  ): Promise<void> {
    let prepared: PreparedReply;
    try {
      prepared = prepareReply(await handler(ctx));
    } catch (err) {
      this.respondError(exchange, err, copied);
      return;
    }
    this.write(exchange, prepared);
  }

  private onUpgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const exchange = this.beginExchange(res);
    let slot: ConnectionSlot | undefined;
    try {
      // req is only valid until this function returns: copy headers and the upgrade keys now.
      const copied = this.copyRequest(res, req);
      const secWebSocketKey = req.getHeader('sec-websocket-key');
      const secWebSocketProtocol = req.getHeader('sec-websocket-protocol');
      const secWebSocketExtensions = req.getHeader('sec-websocket-extensions');
      this.admit(copied.remoteAddress);
      const match = this.wsRoutes.match('GET', copied.path);
      if (match.kind !== 'found') {
        throw new VcaError('VCA_ERR_ROUTE_NOT_FOUND', `No WebSocket route for ${copied.path}`);
      }
      slot = this.reserveConnection(copied.remoteAddress);
      const heldSlot = slot;
      exchange.onAbort = () => this.releaseConnection(heldSlot);
      const route = match.value;
      const ctx: UpgradeContext = { ...copied, params: match.params };
      void this.completeUpgrade(exchange, copied, route, ctx, heldSlot, {
        context,
        secWebSocketKey,
        secWebSocketProtocol,
        secWebSocketExtensions,
      });
    } catch (err) {
      if (slot !== undefined) this.releaseConnection(slot);
      this.respondError(exchange, err, undefined);
    }
  }

  private async completeUpgrade(
    exchange: Exchange,
    copied: CopiedRequest,
    route: WsRoute<unknown>,
    ctx: UpgradeContext,
    slot: ConnectionSlot,
    keys: {
      context: us_socket_context_t;
      secWebSocketKey: string;
      secWebSocketProtocol: string;
      secWebSocketExtensions: string;
    },
  ): Promise<void> {
    let data: unknown;
    try {
      data = await route.upgrade(ctx);
      if (this.closing) throw new VcaError('VCA_ERR_SHUTTING_DOWN');
    } catch (err) {
      this.releaseConnection(slot);
      this.respondError(exchange, err, copied);
      return;
    }
    // The abort handler already released the slot.
    if (exchange.aborted) return;
    this.finishExchange(exchange);
    const holder: SocketHolder = { route, data, slot, session: undefined };
    // After an await we are outside uWS's implicit cork: the upgrade response must be corked.
    try {
      exchange.res.cork(() => {
        exchange.res.upgrade(
          holder,
          keys.secWebSocketKey,
          keys.secWebSocketProtocol,
          keys.secWebSocketExtensions,
          keys.context,
        );
      });
    } catch (err) {
      // Nothing can be written any more: the response is already counted as answered.
      this.releaseConnection(slot);
      this.reportUnexpected(err, { event: 'websocket upgrade', path: copied.path });
    }
  }

  private onWsOpen(socket: WebSocket<SocketHolder>): void {
    const holder = socket.getUserData();
    const session = new UwsSession<unknown>(socket, holder.data, holder.slot.address);
    holder.session = session;
    this.sessions.add(session);
    try {
      holder.route.open?.(session);
    } catch (err) {
      this.reportUnexpected(err, { event: 'websocket open' });
      session.close(1011, 'internal error');
    }
  }

  private onWsMessage(socket: WebSocket<SocketHolder>, message: ArrayBuffer, isBinary: boolean): void {
    const holder = socket.getUserData();
    const session = holder.session;
    if (session === undefined || session.closed) return;
    if (isBinary) {
      session.send(wsError('VCA_ERR_MALFORMED_JSON', 'Send JSON as text frames, not binary'));
      return;
    }
    let parsed: unknown;
    try {
      // Decoding copies the bytes: uWS reuses `message` once this callback returns.
      parsed = JSON.parse(Buffer.from(message).toString('utf8'));
    } catch {
      session.send(wsError('VCA_ERR_MALFORMED_JSON', 'The message is not valid JSON'));
      return;
    }
    if (session.queued >= maxQueuedWsMessages) {
      session.close(1008, 'too many messages in flight');
      return;
    }
    session.queued += 1;
    session.queue = session.queue.then(async () => {
      try {
        if (!session.closed) await holder.route.message(session, parsed);
      } catch (err) {
        const publicError = toPublicError(err);
        if (!isVcaError(err)) this.reportUnexpected(err, { event: 'websocket message' });
        session.send(wsError(publicError.code, publicError.message, publicError.extra));
      } finally {
        session.queued -= 1;
      }
    });
  }

  private onWsClose(socket: WebSocket<SocketHolder>, code: number): void {
    const holder = socket.getUserData();
    this.releaseConnection(holder.slot);
    const session = holder.session;
    if (session === undefined) return;
    session.markClosed();
    this.sessions.delete(session);
    try {
      holder.route.close?.(session, code);
    } catch (err) {
      this.reportUnexpected(err, { event: 'websocket close' });
    }
  }

  private beginExchange(res: HttpResponse): Exchange {
    const exchange: Exchange = {
      res,
      aborted: false,
      responded: false,
      bodyComplete: true,
      onAbort: undefined,
    };
    this.inFlight += 1;
    // Registered before anything can await: uWS frees `res` on abort and any later write would crash.
    res.onAborted(() => {
      exchange.aborted = true;
      exchange.onAbort?.();
      this.finishExchange(exchange);
    });
    return exchange;
  }

  /** Counts an exchange out of `inFlight` once, whether it was answered, upgraded or aborted. */
  private finishExchange(exchange: Exchange): void {
    if (exchange.responded) return;
    exchange.responded = true;
    this.inFlight -= 1;
    if (this.inFlight === 0) this.inFlightDrained?.();
  }

  private copyRequest(res: HttpResponse, req: HttpRequest): CopiedRequest {
    const headers: Record<string, string> = {};
    req.forEach((name, value) => {
      const previous = headers[name];
      headers[name] = previous === undefined ? value : `${previous}, ${value}`;
    });
    const query = req.getQuery();
    return {
      method: req.getMethod().toUpperCase(),
      path: req.getUrl(),
      query: query ? new URLSearchParams(query) : new URLSearchParams(),
      headers,
      remoteAddress: this.remoteAddress(res),
    };
  }

  /** The client's normalized address, from its binary form (cheaper than uWS's text form). */
  private remoteAddress(res: HttpResponse): string {
    return addressFromBytes(res.getRemoteAddress());
  }

  /** Refuses new work while closing and applies the per-address request rate. */
  private admit(remoteAddress: string): void {
    if (this.closing) throw new VcaError('VCA_ERR_SHUTTING_DOWN');
    const decision = this.rateLimiter.take(remoteAddress);
    if (!decision.allowed) {
      throw new VcaError('VCA_ERR_RATE_LIMITED', `Slow down; retry in ${decision.retryAfterSeconds} s`, {
        retryAfterSeconds: decision.retryAfterSeconds,
      });
    }
  }

  private reserveConnection(address: string): ConnectionSlot {
    const count = this.connectionsByAddress.get(address) ?? 0;
    if (count >= this.limits.maxConnectionsPerAddress) {
      throw new VcaError(
        'VCA_ERR_TOO_MANY_CONNECTIONS',
        `At most ${this.limits.maxConnectionsPerAddress} WebSocket connections per address`,
      );
    }
    this.connectionsByAddress.set(address, count + 1);
    return { address, released: false };
  }

  private releaseConnection(slot: ConnectionSlot): void {
    if (slot.released) return;
    slot.released = true;
    const count = (this.connectionsByAddress.get(slot.address) ?? 1) - 1;
    // Deleting at zero keeps the map as small as the set of connected addresses.
    if (count <= 0) this.connectionsByAddress.delete(slot.address);
    else this.connectionsByAddress.set(slot.address, count);
  }

  /**
   * Starts buffering the body now: uWS only delivers body chunks to an `onData` registered before the
   * handler returns. Rejects (and answers 413 at once) past `maxBodyBytes`.
   */
  private startBodyReader(exchange: Exchange, headers: Record<string, string>): RequestBody {
    const contentLength = parseContentLength(headers['content-length']);
    const chunked = headers['transfer-encoding'] !== undefined;
    const limit = this.limits.maxBodyBytes;
    if (contentLength !== undefined && contentLength > limit) {
      throw new VcaError(
        'VCA_ERR_BODY_TOO_LARGE',
        `The body is ${contentLength} bytes; the limit is ${limit}`,
        {
          limitBytes: limit,
        },
      );
    }
    if (!chunked && (contentLength === undefined || contentLength === 0)) {
      return { present: false, bytes: Promise.resolve(Buffer.alloc(0)) };
    }
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
          const err = new VcaError('VCA_ERR_BODY_TOO_LARGE', `The body exceeds the limit of ${limit} bytes`, {
            limitBytes: limit,
          });
          reject(err);
          // Answer now rather than when the handler gets round to it, and close: the rest is never read.
          this.respondError(exchange, err, undefined);
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

  private respondError(exchange: Exchange, err: unknown, copied: CopiedRequest | undefined): void {
    if (err instanceof RequestAbortedError || exchange.aborted) {
      this.logger.debug({ method: copied?.method, path: copied?.path }, 'client aborted the request');
      return;
    }
    if (!isVcaError(err)) this.reportUnexpected(err, { method: copied?.method, path: copied?.path });
    this.write(exchange, problemReply(toPublicError(err)));
  }

  private reportUnexpected(err: unknown, bindings: Record<string, unknown>): void {
    this.logger.error({ err, ...bindings }, 'unexpected error in HTTP layer');
    try {
      this.onError?.(err);
    } catch (hookError) {
      this.logger.error({ err: hookError }, 'onError hook threw');
    }
  }

  private write(exchange: Exchange, reply: PreparedReply): void {
    if (exchange.aborted || exchange.responded) return;
    // A body still arriving would be parsed as the next request; while closing, keep-alive must end too.
    const closeConnection = !exchange.bodyComplete || this.closing;
    const { res } = exchange;
    this.finishExchange(exchange);
    // Writes may happen after an await, outside uWS's implicit cork: cork so status, headers and body
    // go out in one syscall (and uWS does not warn about uncorked writes).
    res.cork(() => {
      res.writeStatus(statusLine(reply.status));
      for (const [name, value] of reply.headers) res.writeHeader(name, value);
      if (reply.payload === undefined && !closeConnection && (reply.status === 204 || reply.status === 304)) {
        // Called with no arguments on purpose: v20.30 turns an explicit `undefined` length into
        // `Content-Length: 9223372036854775808`; with none it writes no content-length, as 204 requires.
        res.endWithoutBody();
      } else {
        res.end(reply.payload ?? '', closeConnection);
      }
    });
  }
}

function announcesBody(headers: Record<string, string>): boolean {
  const contentLength = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (contentLength !== undefined && contentLength !== '0');
}

interface RequestBody {
  present: boolean;
  bytes: Promise<Buffer>;
}

async function readJsonBody(body: RequestBody, contentType: string | undefined): Promise<unknown> {
  if (body.present && (contentType === undefined || !jsonContentTypePattern.test(contentType))) {
    throw new VcaError(
      'VCA_ERR_UNSUPPORTED_MEDIA_TYPE',
      `Send the body with content-type application/json, not ${contentType ?? 'none'}`,
    );
  }
  const bytes = await body.bytes;
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new VcaError('VCA_ERR_MALFORMED_JSON', `The body is not valid JSON: ${(err as Error).message}`);
  }
}

/** An error message on a WebSocket; like a problem body it carries the error's extra members (e.g. `field`). */
function wsError(
  code: string,
  detail: string,
  extra?: Readonly<Record<string, unknown>>,
): { type: 'error'; code: string; detail: string } {
  return { ...extra, type: 'error', code, detail };
}
