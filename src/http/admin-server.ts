/**
 * The admin listener: Node's own HTTP server next to the uWebSockets.js data plane, serving the admin
 * routes (health, readiness, metrics, the operator API) for load balancers, health checkers and
 * operators. uWebSockets.js v20.30 leaves HTTP/1.0 requests unanswered, holds requests with
 * underscored header names or many header fields, and drops malformed ones without a 400; node:http
 * speaks HTTP/1.0 and 1.1 as they are written, answers 400 to a malformed request, 431 to a head over
 * its limit and 408 to a slow one. The routes are the same declarations run through the same route
 * pipeline as on the data plane (the gateway registers them here too); only the transport differs.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { isVcaError, VcaError } from '../errors.js';
import type { HttpMethod, Reply, RequestContext, RouteHandler } from './handler-api.js';
import {
  copyNodeRequest,
  type NodeRequestBody,
  startNodeBodyReader,
  writeNodeReply,
} from './node-http-exchange.js';
import { problemBody, problemContentType, problemHeaders, toPublicError } from './problem.js';
import { prepareReply } from './reply-writer.js';
import { announcesBody, type CopiedRequest, RequestAbortedError, readJsonBody } from './request-reader.js';
import { Router } from './router.js';

export interface AdminLimits {
  /** Largest request head (request line and header fields); larger ones get 431 from node:http. */
  maxHeaderBytes: number;
  /** Largest request body; larger ones get 413. */
  maxBodyBytes: number;
  /** Open connections at once; node:http drops the ones above it. */
  maxConnections: number;
  /** Time to receive a request head (408 after it); clamped to `requestTimeoutMs`. */
  headersTimeoutMs: number;
  /** Time to receive a whole request (408 after it). */
  requestTimeoutMs: number;
}

export interface AdminServerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  limits: AdminLimits;
  logger: Logger;
  /** How long `close()` waits for requests in flight before closing every connection. */
  closeGraceMs: number;
}

/** An error's problem+json reply, in the `Reply` form every listener writes. */
function problemReply(err: VcaError): Reply {
  return {
    status: err.status,
    body: problemBody(err),
    contentType: problemContentType,
    headers: problemHeaders(err),
  };
}

export class AdminServer {
  private readonly server: Server;
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly limits: AdminLimits;
  private readonly logger: Logger;
  private readonly closeGraceMs: number;
  private readonly routes = new Router<RouteHandler>();
  private inFlight = 0;
  private inFlightDrained: (() => void) | undefined;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private boundPort = 0;

  constructor(options: AdminServerOptions) {
    const { limits } = options;
    this.host = options.host;
    this.requestedPort = options.port;
    this.limits = limits;
    this.logger = options.logger.child({ component: 'admin-http' });
    this.closeGraceMs = options.closeGraceMs;
    this.server = createServer(
      {
        maxHeaderSize: limits.maxHeaderBytes,
        // node:http refuses a headers timeout longer than the request timeout.
        headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
        requestTimeout: limits.requestTimeoutMs,
        // The timeouts above are enforced by a periodic check: keep it well below them.
        connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
      },
      (req, res) => this.onRequest(req, res),
    );
    this.server.maxConnections = limits.maxConnections;
  }

  route(method: HttpMethod, pattern: string, handler: RouteHandler): void {
    this.routes.add(method, pattern, handler);
  }

  /** The bound port once listening (useful with port 0), else 0. */
  get port(): number {
    return this.boundPort;
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    if (this.closing) return Promise.reject(new Error('the admin server is closed'));
    return new Promise((resolve, reject) => {
      const onError = (error: Error) =>
        reject(new Error(`could not listen on ${this.host}:${this.requestedPort}: ${error.message}`));
      this.server.once('error', onError);
      this.server.listen(this.requestedPort, this.host, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => this.logger.error({ err: error }, 'admin server error'));
        this.boundPort = (this.server.address() as AddressInfo).port;
        this.logger.info({ host: this.host, port: this.boundPort }, 'admin server listening');
        resolve(this.boundPort);
      });
    });
  }

  /**
   * Stops accepting connections and closes idle ones, answers further requests on open connections
   * with 503 and `connection: close`, waits up to `closeGraceMs` for requests in flight, then closes
   * every remaining connection.
   */
  close(): Promise<void> {
    if (this.closePromise === undefined) this.closePromise = this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.closeGraceMs);
        this.inFlightDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.server.closeAllConnections();
    await closed;
    this.logger.info('admin server closed');
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight += 1;
    res.once('close', () => {
      this.inFlight -= 1;
      if (this.inFlight === 0) this.inFlightDrained?.();
    });
    let request: CopiedRequest | undefined;
    let body: NodeRequestBody | undefined;
    const respond = (reply: Reply) => {
      // A body still arriving is never read now; while closing, keep-alive must end too.
      const bodyPending = request === undefined || (announcesBody(request.headers) && !body?.complete());
      this.write(res, reply, this.closing || bodyPending);
    };
    const respondError = (err: unknown) => {
      if (err instanceof RequestAbortedError || res.destroyed) {
        this.logger.debug({ method: request?.method, path: request?.path }, 'client aborted the request');
        return;
      }
      if (!isVcaError(err)) {
        this.logger.error(
          { err, method: request?.method, path: request?.path },
          'unexpected error in admin HTTP',
        );
      }
      respond(problemReply(toPublicError(err)));
    };
    try {
      request = copyNodeRequest(req);
      if (this.closing) throw new VcaError('VCA_ERR_SHUTTING_DOWN');
      // HEAD is answered as GET without its body (node:http leaves it out): health checkers send it.
      const method = request.method === 'HEAD' ? 'GET' : request.method;
      const match = this.routes.match(method, request.path);
      if (match.kind === 'not-found') {
        throw new VcaError('VCA_ERR_ROUTE_NOT_FOUND', `No route for ${request.path} on the admin listener`);
      }
      if (match.kind === 'method-not-allowed') {
        throw new VcaError(
          'VCA_ERR_METHOD_NOT_ALLOWED',
          `${request.path} does not accept ${request.method}`,
          {
            allow: match.allow,
          },
        );
      }
      const reader = startNodeBodyReader(req, request.headers, this.limits.maxBodyBytes, respondError);
      body = reader;
      const contentType = request.headers['content-type'];
      const ctx: RequestContext = {
        ...request,
        params: match.params,
        readRaw: () => reader.bytes,
        readJson: () => readJsonBody(reader, contentType),
      };
      Promise.resolve()
        .then(() => match.value(ctx))
        .then(respond, respondError);
    } catch (err) {
      respondError(err);
    }
  }

  private write(res: ServerResponse, reply: Reply, closeConnection: boolean): void {
    try {
      writeNodeReply(res, prepareReply(reply), closeConnection);
    } catch (err) {
      // prepareReply refused what the handler returned (bad status, unsafe header): a 500, logged.
      this.logger.error({ err }, 'unexpected error in admin HTTP');
      writeNodeReply(res, prepareReply(problemReply(toPublicError(err))), true);
    }
  }
}
