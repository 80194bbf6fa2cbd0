/**
 * The one pipeline every v1 route runs through: it proves the caller's access (`RouteAccess`), then
 * reads and parses the declared body, and only then calls the handler, so handlers neither
 * authenticate nor validate. Errors a route throws are counted by code; anything that is not a
 * `VcaError` is logged with the route and becomes VCA_ERR_INTERNAL, except a body the client abandoned
 * (counted apart, logged by nobody). WebSocket routes get the same access check before their own
 * upgrade decision, the only place a bearer token may come in the query.
 */
import type { Logger } from 'pino';
import { isVcaError, VcaError } from '../errors.js';
import type { VcaMetrics } from '../metrics/vca-metrics.js';
import type { AlarmCredentials } from './alarm-credentials.js';
import type { ApiRoute, RouteAccess } from './api-routes.js';
import type { Credentials, PresentedCredentials } from './credentials.js';
import type { RequestContext, RouteHandler, UpgradeContext, WsRoute } from './handler-api.js';
import { RequestAbortedError } from './request-reader.js';

export interface RoutePipelineOptions {
  credentials: Credentials;
  metrics: Pick<VcaMetrics, 'httpErrors' | 'httpAbortedRequests'>;
  logger: Logger;
  /** Milliseconds clock of the signature window. */
  now: () => number;
  /** The `alarm` access check (Keystone token or hook secret); without it, the hook secret alone. */
  alarmCredentials?: Pick<AlarmCredentials, 'require'>;
}

/**
 * Returns when the caller may use the route, throws 401 or 403 when not; reads headers and query only.
 * A gamer route's check answers the gamer the caller acts for (`RequestContext.gamer`), or a promise
 * of it while an identity token is verified; the other checks answer nothing.
 */
type AccessCheck = (
  request: UpgradeContext & PresentedCredentials,
) => string | null | Promise<string> | undefined;

/** A check that only proves access (every role but gamer). */
const proving =
  (check: (request: UpgradeContext & PresentedCredentials) => void): AccessCheck =>
  (request) => {
    check(request);
    return undefined;
  };

/** Whether requests to `route` are rate-limited by the credential they present (`RouteOptions`). */
export function ratesByCredential(route: Pick<ApiRoute, 'access'>): boolean {
  return route.access === 'gamer' || route.access === 'operator' || route.access === 'node';
}

export class RoutePipeline {
  private readonly options: RoutePipelineOptions;

  constructor(options: RoutePipelineOptions) {
    this.options = options;
  }

  /** The server handler of `route`: access, then body, then the route's own handler. */
  handler(route: ApiRoute): RouteHandler {
    const { metrics, logger } = this.options;
    const { body } = route;
    const signed = route.access === 'signed-orchestrator';
    const alarm = route.access === 'alarm';
    const checkAccess = signed || alarm ? undefined : this.accessCheck(route.access, route.path);
    return async (ctx) => {
      try {
        if (signed) await this.checkSignature(ctx);
        else if (alarm) await this.checkAlarmCaller(ctx);
        else if (checkAccess) {
          try {
            const gamer = checkAccess(ctx);
            if (gamer !== undefined) ctx.gamer = gamer instanceof Promise ? await gamer : gamer;
          } catch (refusal) {
            // Counted by its credential until now: a refused one is counted by address (may be a 429).
            ctx.refuseCredential?.();
            throw refusal;
          }
        }
        const value = body === undefined ? undefined : body.parse(await ctx.readJson(), ctx);
        return await route.handler(ctx, value);
      } catch (error) {
        // The client left before its body was complete: its doing, nobody to answer, nothing to page on.
        if (error instanceof RequestAbortedError) {
          metrics.httpAbortedRequests.inc();
          throw error;
        }
        metrics.httpErrors.inc({ code: isVcaError(error) ? error.code : 'VCA_ERR_INTERNAL' });
        if (isVcaError(error) || !(error instanceof Error)) throw error;
        logger.error({ err: error, route: route.path }, 'route failed');
        throw new VcaError('VCA_ERR_INTERNAL');
      }
    };
  }

  /** `route` refusing the upgrade of a caller without `access` before its own `upgrade` runs. */
  websocket<U>(path: string, access: RouteAccess, route: WsRoute<U>): WsRoute<U> {
    if (access === 'alarm-path-token')
      throw new Error(`route ${path}: alarm actions are HTTP POSTs, not WebSockets`);
    const checkAccess = this.accessCheck(access, path);
    if (checkAccess === undefined) return route;
    return {
      ...route,
      upgrade: (ctx) => {
        // Browsers cannot set headers on an upgrade: only here may a bearer token come as `?token=`.
        const gamer = checkAccess({ ...ctx, queryTokenAccepted: true });
        if (gamer instanceof Promise) {
          return gamer.then((subject) => {
            ctx.gamer = subject;
            return route.upgrade(ctx);
          });
        }
        if (gamer !== undefined) ctx.gamer = gamer;
        return route.upgrade(ctx);
      },
    };
  }

  /** The check for `access`, decided once per route; `undefined` for public routes. */
  private accessCheck(access: RouteAccess, path: string): AccessCheck | undefined {
    const { credentials } = this.options;
    switch (access) {
      case 'public':
        return undefined;
      case 'alarm-path-token':
        if (!path.split('/').includes(':token'))
          throw new Error(`alarm route ${path} has no :token for its handler to check`);
        return undefined;
      case 'gamer':
        return (request) => credentials.requireGamer(request, this.options.now());
      case 'operator':
        return proving((request) => credentials.requireRole(request, access));
      case 'node':
        if (!path.split('/').includes(':id'))
          throw new Error(`node route ${path} has no :id naming the node`);
        return proving((request) => credentials.requireNode(request, request.params.id ?? ''));
      case 'orchestrator':
        return proving((request) => credentials.requireHookSecret(request));
      case 'signed-orchestrator':
        throw new Error(`route ${path}: a signature covers a body, which only the HTTP pipeline reads`);
      case 'alarm':
        throw new Error(`route ${path}: alarm actions are HTTP POSTs, not WebSockets`);
    }
  }

  /** A Keystone token (validated with Keystone: asynchronous) or the hook secret. */
  private async checkAlarmCaller(ctx: RequestContext): Promise<void> {
    const { alarmCredentials, credentials } = this.options;
    if (alarmCredentials) await alarmCredentials.require(ctx);
    else credentials.requireHookSecret(ctx);
  }

  /** The signature covers the raw bytes; only after it holds is the body held to JSON and parsed. */
  private async checkSignature(ctx: RequestContext): Promise<void> {
    const raw = await ctx.readRaw();
    this.options.credentials.requireSignature(ctx, raw, this.options.now());
  }
}
