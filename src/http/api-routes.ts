/**
 * How a route of the v1 API is declared: method, path, who may call it, the JSON body it takes and
 * its handler. The route pipeline (`route-pipeline.ts`) enforces the access and the body before the
 * handler runs, and the OpenAPI document (`openapi.ts`) is generated from the same declarations, so
 * what is checked, what is served and what is documented cannot drift apart.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { validateBody } from './api-schemas.js';
import type { Role } from './credentials.js';
import type { HttpMethod, Reply, RequestContext } from './handler-api.js';

/**
 * Who may call a route; the pipeline checks it before the body is parsed:
 * - `public`: anyone;
 * - `gamer`, `operator`: a bearer token of that role (401 without one or with an unknown one, 403
 *   with a token of the other role);
 * - `node`: the token of the node the path's `:id` names;
 * - `orchestrator`: the hook secret in X-VCA-Hook-Secret or `?secret=` (Aodh cannot sign);
 * - `signed-orchestrator`: X-VCA-Signature, an HMAC of the raw body, checked before the body is parsed;
 * - `alarm`: an Aodh alarm action: a Keystone token in X-Auth-Token (Aodh's `trust+http`), else the
 *   hook secret as for `orchestrator` (`alarm-credentials.ts`);
 * - `alarm-path-token`: a per-alarm token in the path (`:token`), which names the alarm it is for, so
 *   the route's handler checks it against the parsed body before anything changes.
 */
export type RouteAccess = Role | 'public' | 'signed-orchestrator' | 'alarm' | 'alarm-path-token';

/** The JSON body a route takes: documented by `schema`, turned into the handler's value by `parse`. */
export interface RouteBody<B> {
  schema: TSchema;
  /** True when a request may come without a body. */
  optional: boolean;
  /** Checks the parsed JSON (`undefined` when there is none); throws VCA_ERR_VALIDATION naming the field. */
  parse(value: unknown, request: RequestContext): B;
}

export interface RouteDeclaration<B> {
  method: HttpMethod;
  path: string;
  access: RouteAccess;
  summary: string;
  /** The body the route takes; a route without one never reads the body. */
  body?: RouteBody<B>;
  /** Status codes and what they mean, for the OpenAPI document. */
  responses: Record<number, string>;
  /** Runs once access is proven and the body parsed (`undefined` for a route without a body). */
  handler(request: RequestContext, body: B): Reply | Promise<Reply>;
}

/** A declared route with its body type erased, as the pipeline and the OpenAPI document take it. */
export type ApiRoute = RouteDeclaration<unknown>;

/** Declares a route; the handler's `body` parameter gets the type `body.parse` returns. */
export function defineRoute<B = undefined>(route: RouteDeclaration<B>): ApiRoute {
  return route as ApiRoute;
}

/**
 * A JSON body that must match `schema` (additional properties as the schema says). `whenAbsent`
 * stands in for a request without a body; without it such a request is a 400 naming `body`.
 */
export function jsonBody<S extends TSchema>(
  schema: S,
  options: { whenAbsent?: Static<S> } = {},
): RouteBody<Static<S>> {
  const { whenAbsent } = options;
  return {
    schema,
    optional: whenAbsent !== undefined,
    parse: (value) => validateBody(schema, value === undefined ? whenAbsent : value),
  };
}

/**
 * A JSON body in a foreign or many-shaped format whose own parser validates it (with field paths
 * precise to the shape it recognised); `schema` documents everything it accepts.
 */
export function parsedBody<B>(
  schema: TSchema,
  parse: (value: unknown, request: RequestContext) => B,
): RouteBody<B> {
  return { schema, optional: false, parse };
}

export function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return headers ? { status, body, headers } : { status, body };
}
