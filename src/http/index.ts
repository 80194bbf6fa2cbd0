/** The HTTP edge: the uWebSockets.js adapter and the problem+json mapping other folders may use. */

export { problemBody, problemContentType, problemHeaders, problemType, toPublicError } from './problem.js';
export type {
  HttpLimits,
  HttpMethod,
  HttpServerOptions,
  Reply,
  RequestContext,
  RouteHandler,
  UpgradeContext,
  WsRoute,
  WsSession,
} from './uws-server.js';
export { assertNativeUws, HttpServer } from './uws-server.js';
