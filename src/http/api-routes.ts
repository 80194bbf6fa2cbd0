/**
 * The route table of the v1 API: each route's method, path, role, body schema and handler. The
 * gateway registers routes from it (checking the role before the handler runs) and the OpenAPI
 * document is generated from the same entries.
 */
import type { TSchema } from '@sinclair/typebox';
import type { Role } from './credentials.js';
import type { HttpMethod, Reply, RequestContext } from './uws-server.js';

export type RouteAccess = Role | 'public' | 'metrics';

export interface ApiRoute {
  method: HttpMethod;
  path: string;
  access: RouteAccess;
  summary: string;
  body?: TSchema;
  /** Status codes and what they mean, for the OpenAPI document. */
  responses: Record<number, string>;
  handler: (ctx: RequestContext) => Reply | Promise<Reply>;
}

export function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return headers ? { status, body, headers } : { status, body };
}
