/** Builds the OpenAPI 3.1 document from the route table and its TypeBox schemas (JSON Schema 2020-12). */
import type { ApiRoute } from './api-routes.js';

const securityByAccess: Record<string, Array<Record<string, string[]>>> = {
  gamer: [{ gamerToken: [] }],
  operator: [{ operatorToken: [] }],
  node: [{ nodeToken: [] }],
  orchestrator: [{ hookSecret: [] }, { hookSignature: [] }],
  metrics: [{ operatorToken: [] }, {}],
  public: [],
};

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
        ? { requestBody: { required: true, content: { 'application/json': { schema: route.body } } } }
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
