/**
 * Builds the OpenAPI 3.1 document from the declared routes: paths, parameters, the access each route
 * declares as its security, and the TypeBox schema of each body (JSON Schema 2020-12), the very
 * declarations the route pipeline enforces.
 */
import { type ApiRoute, defineRoute, json, type RouteAccess } from './api-routes.js';

const securityByAccess: Record<RouteAccess, Array<Record<string, string[]>>> = {
  gamer: [{ gamerToken: [] }],
  operator: [{ operatorToken: [] }],
  node: [{ nodeToken: [] }],
  orchestrator: [{ hookSecret: [] }],
  'signed-orchestrator': [{ hookSignature: [] }],
  alarm: [{ keystoneToken: [] }, { hookSecret: [] }],
  // The token is a path segment, which OpenAPI security schemes cannot name: see the route's summary.
  'alarm-path-token': [],
  public: [],
};

/** `GET /v1/openapi.json`: the document of `routes` and of this route itself, built once. */
export function openApiRoute(routes: readonly ApiRoute[], version: string): ApiRoute {
  let document: unknown;
  const route = defineRoute({
    method: 'GET',
    path: '/v1/openapi.json',
    access: 'public',
    summary: 'This document',
    responses: { 200: 'OpenAPI 3.1' },
    handler: () => json(200, document),
  });
  document = buildOpenApi([...routes, route], version);
  return route;
}

export function buildOpenApi(routes: readonly ApiRoute[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((match) => ({
      name: match[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const responses: Record<string, unknown> = {};
    for (const [status, description] of Object.entries(route.responses)) {
      responses[status] =
        Number(status) >= 400
          ? {
              description,
              content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
            }
          : { description };
    }
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = {
      summary: route.summary,
      security: securityByAccess[route.access],
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: !route.body.optional,
              content: { 'application/json': { schema: route.body.schema } },
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Virtual Cluster Agent',
      version,
      description:
        'Gateway of a cloud-gaming service: places sessions on GPUs of rendering nodes. WebSocket /v1/play carries request, queued, assigned, migrate, ended, error and resume messages (see README).',
    },
    paths,
    components: {
      securitySchemes: {
        gamerToken: { type: 'http', scheme: 'bearer' },
        operatorToken: { type: 'http', scheme: 'bearer' },
        nodeToken: { type: 'http', scheme: 'bearer', description: 'Per-node token returned at registration' },
        hookSecret: { type: 'apiKey', in: 'header', name: 'X-VCA-Hook-Secret' },
        hookSignature: { type: 'apiKey', in: 'header', name: 'X-VCA-Signature' },
        keystoneToken: {
          type: 'apiKey',
          in: 'header',
          name: 'X-Auth-Token',
          description: 'A Keystone token (what Aodh sends for a trust+http alarm action)',
        },
      },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'code'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { type: 'string', description: 'Stable machine code, VCA_ERR_*' },
            field: { type: 'string', description: 'The offending field, for validation errors' },
          },
        },
      },
    },
  };
}
