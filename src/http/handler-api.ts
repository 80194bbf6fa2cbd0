/**
 * What route code sees of the HTTP edge: plain request contexts, replies and WebSocket sessions. These
 * types carry no uWebSockets.js idiom; the adapter (`uws-server.ts` and its helpers) turns uWS
 * requests into them and them into uWS writes, so route code never holds a uWS object.
 */

/** HEAD only where a route registers it (the console's files); it is answered without a body. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';

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
  /**
   * On gamer routes, set by the route pipeline once access is proven: the gamer the caller acts for —
   * the `sub` of a verified gamer identity token — or null for a front-end's static gamer token, which
   * acts for every gamer. Undefined on other routes.
   */
  gamer?: string | null;
  /**
   * Set when the request was rate-limited by the credential it presents (not yet verified): whoever
   * refuses that credential (401, 403) calls it first, so the request counts against the client address
   * instead; it throws VCA_ERR_RATE_LIMITED (429) when that address is out of tokens.
   */
  refuseCredential?(): void;
  /** The body as JSON, `undefined` when there is none; 415 when not JSON-typed, 400 when malformed. */
  readJson(): Promise<unknown>;
  /** The body bytes (empty when there is none), at most `maxBodyBytes`. */
  readRaw(): Promise<Buffer>;
}

export type UpgradeContext = Omit<RequestContext, 'readJson' | 'readRaw' | 'refuseCredential'>;

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

export interface RouteOptions {
  /**
   * The route proves access with a credential in `Authorization` (gamer, operator, node): a request
   * presenting one is rate-limited by it rather than by the client address, and the handler calls
   * `refuseCredential` before refusing it.
   */
  rateByCredential?: boolean;
}

export interface WsSession<U> {
  readonly data: U;
  /** Sends `message` as JSON text; false when the socket is closed or the message was dropped for backpressure. */
  send(message: object): boolean;
  close(code?: number, reason?: string): void;
  /** Bytes queued for the client and not yet written to the network (0 once closed). */
  bufferedBytes(): number;
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
