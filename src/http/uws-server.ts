/**
 * The HTTP server over uWebSockets.js, and the one place that creates a uWS app: checks at boot that
 * the native binding (not the pure-JS fallback) is loaded, wires admission, the request reader, the
 * reply writer and the WebSocket sessions to it, dispatches each HTTP request to its route, and closes
 * gracefully. Route code registers plain `RouteHandler`s and `WsRoute`s (`handler-api.ts`) and never
 * sees a uWS `HttpResponse`, `HttpRequest` or `WebSocket`.
 */

import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket } from 'uWebSockets.js';
import uws from 'uWebSockets.js';
import type { Logger } from 'pino';
import { VcaError } from '../errors.js';
import { Admission, type AdmissionLimits } from './admission.js';
import type { HttpMethod, RequestContext, RouteHandler, RouteOptions, WsRoute } from './handler-api.js';
import {
  type Exchange,
  type PreparedReply,
  prepareReply,
  ReplyWriter,
  type RequestLine,
} from './reply-writer.js';
import { announcesBody, copyRequest, readJsonBody, startBodyReader } from './request-reader.js';
import { Router } from './router.js';
import { type WebSocketCutReason, type WebSocketLimits, WebSocketSessions } from './ws-sessions.js';

export interface HttpLimits extends AdmissionLimits, WebSocketLimits {
  /** Largest accepted request body; larger ones get 413 before (content-length) or while (chunked) buffering. */
  maxBodyBytes: number;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  limits: HttpLimits;
  logger: Logger;
  /** Called with every unexpected (non-`VcaError`) error a handler throws, after it is logged. */
  onError?: (err: unknown) => void;
  /** Milliseconds clock for rate limiting and WebSocket message budgets; defaults to `Date.now`. */
  now?: () => number;
  /** Told each time a WebSocket is cut off for breaking a limit (for a metric). */
  onWebSocketCut?: (reason: WebSocketCutReason) => void;
  /** How long `close()` waits for in-flight HTTP requests before tearing connections down. */
  closeGraceMs?: number;
}

/** `app.close()` exists in the v20.30 native binding but not in its typings. */
type ClosableApp = TemplatedApp & { close(): void };

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

export class HttpServer {
  private readonly app: ClosableApp;
  private readonly host: string;
  private readonly port: number;
  private readonly maxBodyBytes: number;
  private readonly logger: Logger;
  private readonly onError: ((err: unknown) => void) | undefined;
  private readonly closeGraceMs: number;
  private readonly routes = new Router<RouteHandler>();
  /** Handlers registered with `rateByCredential`. */
  private readonly credentialRated = new WeakSet<RouteHandler>();
  private readonly admission: Admission;
  private readonly writer: ReplyWriter;
  private readonly websockets: WebSocketSessions;
  private listenSocket: us_listen_socket | undefined;
  private closePromise: Promise<void> | undefined;

  constructor(options: HttpServerOptions) {
    assertNativeUws();
    this.host = options.host;
    this.port = options.port;
    this.maxBodyBytes = options.limits.maxBodyBytes;
    this.logger = options.logger.child({ component: 'http' });
    this.onError = options.onError;
    this.closeGraceMs = options.closeGraceMs ?? 5_000;
    const reportUnexpected = (err: unknown, bindings: Record<string, unknown>) =>
      this.reportUnexpected(err, bindings);
    const now = options.now ?? Date.now;
    this.admission = new Admission(options.limits, now);
    this.writer = new ReplyWriter({
      logger: this.logger,
      reportUnexpected,
      isClosing: () => this.admission.closing,
    });
    this.websockets = new WebSocketSessions({
      limits: options.limits,
      writer: this.writer,
      admission: this.admission,
      reportUnexpected,
      now,
      onCut: options.onWebSocketCut,
    });
    this.app = uws.App() as ClosableApp;
    // Every upgrade request lands here and is routed by the WebSocket sessions; plain GETs on '/*' are
    // yielded by uWS (no sec-websocket-key) to the HTTP catch-all below.
    this.app.ws('/*', this.websockets.behavior());
    this.app.any('/*', (res, req) => this.onHttpRequest(res, req));
  }

  route(method: HttpMethod, pattern: string, handler: RouteHandler, options: RouteOptions = {}): void {
    this.routes.add(method, pattern, handler);
    if (options.rateByCredential === true) this.credentialRated.add(handler);
  }

  websocket<U>(pattern: string, route: WsRoute<U>): void {
    this.websockets.add(pattern, route);
    // A plain GET on a WebSocket path is a known route that needs an upgrade, not a 404.
    this.routes.add('GET', pattern, () => {
      throw new VcaError('VCA_ERR_VALIDATION', 'This route only accepts WebSocket upgrades');
    });
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    if (this.admission.closing) return Promise.reject(new Error('the HTTP server is closed'));
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
    return this.websockets.count;
  }

  private async shutdown(): Promise<void> {
    this.admission.close();
    if (this.listenSocket !== undefined) {
      uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
    this.websockets.closeAll();
    await this.writer.drain(this.closeGraceMs);
    // One loop turn lets uWS flush the close frames it just queued before the sockets go away.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.app.close();
    this.logger.info('http server closed');
  }

  private onHttpRequest(res: HttpResponse, req: HttpRequest): void {
    const exchange = this.writer.begin(res);
    try {
      // req is only valid until this function returns: copy everything out of it now.
      const copied = copyRequest(
        res,
        req,
        this.admission.trustedProxies,
        () => !exchange.aborted && !exchange.responded,
      );
      const { headers, method, path } = copied;
      // Until the body is read, any early answer (404, 429, 413...) must close the connection.
      exchange.bodyComplete = !announcesBody(headers);
      // A route registered for HEAD (the console's static files) answers without its body.
      exchange.head = method === 'HEAD';
      let match: ReturnType<Router<RouteHandler>['match']> | undefined;
      let matchError: unknown;
      try {
        match = this.routes.match(method, path);
      } catch (err) {
        matchError = err;
      }
      // Admission before anything else can answer: a 400 or 404 spends a token like any request.
      const credentialKey =
        match?.kind === 'found' && this.credentialRated.has(match.value)
          ? this.admission.credentialKey(headers.authorization)
          : undefined;
      if (credentialKey !== undefined) this.admission.admitCredential(credentialKey);
      else this.admission.admit(copied.remoteAddress, path);
      if (match === undefined) throw matchError;
      if (match.kind === 'not-found') {
        throw new VcaError('VCA_ERR_ROUTE_NOT_FOUND', `No route for ${path}`);
      }
      if (match.kind === 'method-not-allowed') {
        throw new VcaError('VCA_ERR_METHOD_NOT_ALLOWED', `${path} does not accept ${method}`, {
          allow: match.allow,
        });
      }
      const body = startBodyReader(exchange, headers, this.maxBodyBytes, this.writer);
      const admission = this.admission;
      const ctx: RequestContext = {
        method,
        path,
        query: copied.query,
        headers,
        get remoteAddress() {
          return copied.remoteAddress;
        },
        params: match.params,
        readRaw: () => body.bytes,
        readJson: () => readJsonBody(body, headers['content-type']),
      };
      if (credentialKey !== undefined) {
        ctx.refuseCredential = () => admission.refuseCredential(credentialKey, copied.remoteAddress);
      }
      void this.runHandler(exchange, copied, match.value, ctx);
    } catch (err) {
      this.writer.respondError(exchange, err, undefined);
    }
  }

  private async runHandler(
    exchange: Exchange,
    request: RequestLine,
    handler: RouteHandler,
    ctx: RequestContext,
  ): Promise<void> {
    let prepared: PreparedReply;
    try {
      prepared = prepareReply(await handler(ctx));
    } catch (err) {
      this.writer.respondError(exchange, err, request);
      return;
    }
    this.writer.write(exchange, prepared);
  }

  private reportUnexpected(err: unknown, bindings: Record<string, unknown>): void {
    this.logger.error({ err, ...bindings }, 'unexpected error in HTTP layer');
    try {
      this.onError?.(err);
    } catch (hookError) {
      this.logger.error({ err: hookError }, 'onError hook threw');
    }
  }
}
