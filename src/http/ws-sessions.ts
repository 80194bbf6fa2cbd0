/**
 * The WebSocket side of the uWebSockets.js adapter: routes upgrades (admitted, capped per address,
 * decided asynchronously by the route and completed inside `res.cork`), wraps each uWS socket in a
 * `WsSession` that sends JSON, cuts off slow consumers and is never touched after close, holds each
 * socket to a message budget (closed with 1008 past it, so one flooding socket cannot starve the
 * others), feeds a socket's JSON messages to its route one at a time in arrival order, and closes
 * every socket on shutdown.
 */

import type {
  HttpRequest,
  HttpResponse,
  us_socket_context_t,
  WebSocket,
  WebSocketBehavior,
} from 'uWebSockets.js';
import { isVcaError, VcaError } from '../errors.js';
import { exceedsJsonDepth, jsonTooDeepError } from '../json-depth.js';
import type { Admission, ConnectionSlot } from './admission.js';
import type { UpgradeContext, WsRoute, WsSession } from './handler-api.js';
import { checkMessageBudgetLimits, MessageBudget, type MessageBudgetLimits } from './message-budget.js';
import { toPublicError } from './problem.js';
import type { Exchange, ReplyWriter, ReportUnexpected } from './reply-writer.js';
import { type CopiedRequest, copyRequest } from './request-reader.js';
import { Router } from './router.js';

export interface WebSocketLimits {
  /** Largest accepted WebSocket message; uWS closes the socket on a larger one. */
  maxWsPayloadBytes: number;
  /** A WebSocket silent this long is closed by uWS (it sends pings automatically). */
  wsIdleTimeoutSeconds: number;
  /** Bytes queued for a WebSocket above which messages are dropped and the slow consumer is closed. */
  wsMaxBackpressureBytes: number;
  /** Messages per second one socket may send, sustained; past its budget it is closed with 1008. */
  wsMessagesPerSecond: number;
  /** Messages one socket may send at once above the sustained rate. */
  wsMessageBurst: number;
}

/** Why the gateway cut a socket off (a low-cardinality metric label). */
export type WebSocketCutReason = 'message-rate' | 'messages-in-flight' | 'slow-consumer';

export interface WebSocketSessionsOptions {
  limits: WebSocketLimits;
  writer: ReplyWriter;
  admission: Admission;
  reportUnexpected: ReportUnexpected;
  /** Milliseconds clock of the message budgets. */
  now: () => number;
  /** Told each time a socket is cut off, after its close frame is queued. */
  onCut?: ((reason: WebSocketCutReason) => void) | undefined;
}

/** The uWS `send` result meaning the message was dropped because backpressure exceeded `maxBackpressure`. */
const wsSendDropped = 2;
/** Messages waiting for a socket's previous message handler to finish before the client is cut off. */
const maxQueuedWsMessages = 64;
/** RFC 6455 limits a close reason to 123 bytes. */
const maxCloseReasonBytes = 123;

/** What uWS stores as a WebSocket's user data: the route and the session built on open. */
interface SocketHolder {
  readonly route: WsRoute<unknown>;
  readonly data: unknown;
  readonly slot: ConnectionSlot;
  session: UwsSession<unknown> | undefined;
}

/** The upgrade headers and socket context, copied while the uWS request is still valid. */
interface UpgradeKeys {
  context: us_socket_context_t;
  secWebSocketKey: string;
  secWebSocketProtocol: string;
  secWebSocketExtensions: string;
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
    readonly budget: MessageBudget,
    private readonly onCut: (reason: WebSocketCutReason) => void,
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
      this.cutOff('slow-consumer', 1013, 'slow consumer');
      return false;
    }
    return true;
  }

  bufferedBytes(): number {
    return this.closed ? 0 : this.socket.getBufferedAmount();
  }

  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.isEnding = true;
    // end() runs the close handler synchronously; the uWS socket is invalid afterwards.
    this.socket.end(code, truncateUtf8(reason, maxCloseReasonBytes));
  }

  /** Closes the socket for breaking a limit and reports why (once: a closed socket breaks nothing). */
  cutOff(reason: WebSocketCutReason, code: number, text: string): void {
    if (this.closed) return;
    this.close(code, text);
    this.onCut(reason);
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

/** An error message on a WebSocket; like a problem body it carries the error's extra members (e.g. `field`). */
function wsError(
  code: string,
  detail: string,
  extra?: Readonly<Record<string, unknown>>,
): { type: 'error'; code: string; detail: string } {
  return { ...extra, type: 'error', code, detail };
}

export class WebSocketSessions {
  private readonly routes = new Router<WsRoute<unknown>>();
  private readonly sessions = new Set<UwsSession<unknown>>();
  private readonly writer: ReplyWriter;
  private readonly admission: Admission;
  private readonly reportUnexpected: ReportUnexpected;
  private readonly now: () => number;
  private readonly onCut: (reason: WebSocketCutReason) => void;
  private readonly limits: WebSocketLimits;
  private readonly budgetLimits: MessageBudgetLimits;
  /** The close reason of a socket past its budget, built once. */
  private readonly rateLimitReason: string;

  constructor(options: WebSocketSessionsOptions) {
    const { limits } = options;
    this.limits = limits;
    this.budgetLimits = { ratePerSecond: limits.wsMessagesPerSecond, burst: limits.wsMessageBurst };
    checkMessageBudgetLimits(this.budgetLimits);
    this.rateLimitReason = `message rate over ${limits.wsMessagesPerSecond}/s (burst ${limits.wsMessageBurst})`;
    this.writer = options.writer;
    this.admission = options.admission;
    this.reportUnexpected = options.reportUnexpected;
    this.now = options.now;
    this.onCut = (reason) => {
      try {
        options.onCut?.(reason);
      } catch (err) {
        this.reportUnexpected(err, { event: 'websocket cut', reason });
      }
    };
  }

  add<U>(pattern: string, route: WsRoute<U>): void {
    this.routes.add('GET', pattern, route as WsRoute<unknown>);
  }

  /** Open WebSockets. */
  get count(): number {
    return this.sessions.size;
  }

  /** The uWS behaviour for `app.ws('/*', ...)`: every upgrade request is routed by this class. */
  behavior(): WebSocketBehavior<SocketHolder> {
    const { limits } = this;
    return {
      maxPayloadLength: limits.maxWsPayloadBytes,
      idleTimeout: limits.wsIdleTimeoutSeconds,
      maxBackpressure: limits.wsMaxBackpressureBytes,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.onUpgrade(res, req, context),
      open: (socket) => this.onOpen(socket),
      message: (socket, message, isBinary) => this.onMessage(socket, message, isBinary),
      close: (socket, code) => this.onClose(socket, code),
    };
  }

  /** Sends `{type:'shutdown'}` to every open socket and closes it with 1001. */
  closeAll(): void {
    for (const session of [...this.sessions]) {
      session.send({ type: 'shutdown' });
      session.close(1001, 'going away');
    }
  }

  private onUpgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const exchange = this.writer.begin(res);
    let slot: ConnectionSlot | undefined;
    try {
      // req is only valid until this function returns: copy headers and the upgrade keys now.
      const copied = copyRequest(
        res,
        req,
        this.admission.trustedProxies,
        () => !exchange.aborted && !exchange.responded,
      );
      const secWebSocketKey = req.getHeader('sec-websocket-key');
      const secWebSocketProtocol = req.getHeader('sec-websocket-protocol');
      const secWebSocketExtensions = req.getHeader('sec-websocket-extensions');
      this.admission.admit(copied.remoteAddress);
      const match = this.routes.match('GET', copied.path);
      if (match.kind !== 'found') {
        throw new VcaError('VCA_ERR_ROUTE_NOT_FOUND', `No WebSocket route for ${copied.path}`);
      }
      slot = this.admission.reserveConnection(copied.remoteAddress);
      const heldSlot = slot;
      exchange.onAbort = () => this.admission.releaseConnection(heldSlot);
      const route = match.value;
      const ctx: UpgradeContext = {
        method: copied.method,
        path: copied.path,
        query: copied.query,
        headers: copied.headers,
        remoteAddress: copied.remoteAddress,
        params: match.params,
      };
      void this.completeUpgrade(exchange, copied, route, ctx, heldSlot, {
        context,
        secWebSocketKey,
        secWebSocketProtocol,
        secWebSocketExtensions,
      });
    } catch (err) {
      if (slot !== undefined) this.admission.releaseConnection(slot);
      this.writer.respondError(exchange, err, undefined);
    }
  }

  private async completeUpgrade(
    exchange: Exchange,
    copied: CopiedRequest,
    route: WsRoute<unknown>,
    ctx: UpgradeContext,
    slot: ConnectionSlot,
    keys: UpgradeKeys,
  ): Promise<void> {
    let data: unknown;
    try {
      data = await route.upgrade(ctx);
      if (this.admission.closing) throw new VcaError('VCA_ERR_SHUTTING_DOWN');
    } catch (err) {
      this.admission.releaseConnection(slot);
      this.writer.respondError(exchange, err, copied);
      return;
    }
    // The abort handler already released the slot.
    if (exchange.aborted) return;
    this.writer.finish(exchange);
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
      this.admission.releaseConnection(slot);
      this.reportUnexpected(err, { event: 'websocket upgrade', path: copied.path });
    }
  }

  private onOpen(socket: WebSocket<SocketHolder>): void {
    const holder = socket.getUserData();
    const session = new UwsSession<unknown>(
      socket,
      holder.data,
      holder.slot.address,
      new MessageBudget(this.budgetLimits, this.now()),
      this.onCut,
    );
    holder.session = session;
    this.sessions.add(session);
    try {
      holder.route.open?.(session);
    } catch (err) {
      this.reportUnexpected(err, { event: 'websocket open' });
      session.close(1011, 'internal error');
    }
  }

  private onMessage(socket: WebSocket<SocketHolder>, message: ArrayBuffer, isBinary: boolean): void {
    const holder = socket.getUserData();
    const session = holder.session;
    if (session === undefined || session.closed) return;
    // Every frame spends from the budget, checked before it costs any decoding or parsing.
    if (!session.budget.spend(this.now())) {
      session.cutOff('message-rate', 1008, this.rateLimitReason);
      return;
    }
    if (isBinary) {
      session.send(wsError('VCA_ERR_MALFORMED_JSON', 'Send JSON as text frames, not binary'));
      return;
    }
    // A view, not a copy: read only within this callback, before uWS reuses `message`.
    const bytes = Buffer.from(message);
    if (exceedsJsonDepth(bytes)) {
      const tooDeep = jsonTooDeepError('message');
      session.send(wsError(tooDeep.code, tooDeep.message, tooDeep.extra));
      return;
    }
    let parsed: unknown;
    try {
      // Decoding copies the bytes: uWS reuses `message` once this callback returns.
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      session.send(wsError('VCA_ERR_MALFORMED_JSON', 'The message is not valid JSON'));
      return;
    }
    if (session.queued >= maxQueuedWsMessages) {
      session.cutOff('messages-in-flight', 1008, 'too many messages in flight');
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

  private onClose(socket: WebSocket<SocketHolder>, code: number): void {
    const holder = socket.getUserData();
    this.admission.releaseConnection(holder.slot);
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
}
