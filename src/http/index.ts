/** The HTTP edge: the uWebSockets.js adapter and the problem+json mapping other folders may use. */

export type {
  HttpMethod,
  Reply,
  RequestContext,
  RouteHandler,
  UpgradeContext,
  WsRoute,
  WsSession,
} from './handler-api.js';
export { problemBody, problemContentType, problemHeaders, problemType, toPublicError } from './problem.js';
export type { HttpLimits, HttpServerOptions } from './uws-server.js';
export { assertNativeUws, HttpServer } from './uws-server.js';
