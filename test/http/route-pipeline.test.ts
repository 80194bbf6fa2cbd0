/** Specification of the route pipeline: access first, then the declared body, then the handler. */

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import pino from 'pino';
import { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { VcaError } from '../../src/errors.js';
import { type ApiRoute, defineRoute, json, jsonBody, parsedBody } from '../../src/http/api-routes.js';
import { Credentials, signBody } from '../../src/http/credentials.js';
import type { RequestContext, UpgradeContext } from '../../src/http/handler-api.js';
import { buildOpenApi } from '../../src/http/openapi.js';
import { RequestAbortedError } from '../../src/http/request-reader.js';
import { RoutePipeline } from '../../src/http/route-pipeline.js';

const secrets = {
  gamerTokens: ['gamer-token-0123456789'],
  operatorTokens: ['operator-token-0123456789'],
  orchestratorSecret: 'orchestrator-secret-0123456789',
  masterSecret: 'master-secret-0123456789abcdef-0123456789abcdef',
  signatureToleranceSeconds: 300,
};
const nowMs = 1_800_000_000_000;

function buildPipeline(logger = pino({ level: 'silent' })) {
  const httpErrors = new Counter({
    name: 'test_http_errors_total',
    help: 'test',
    labelNames: ['code'] as const,
    registers: [],
  });
  const httpAbortedRequests = new Counter({
    name: 'test_http_aborted_requests_total',
    help: 'test',
    registers: [],
  });
  const pipeline = new RoutePipeline({
    credentials: new Credentials(secrets),
    metrics: { httpErrors, httpAbortedRequests },
    logger,
    now: () => nowMs,
  });
  const countOf = async (code: string) =>
    (await httpErrors.get()).values.find((value) => value.labels.code === code)?.value ?? 0;
  const abortedCount = async () => (await httpAbortedRequests.get()).values[0]?.value ?? 0;
  return { pipeline, countOf, abortedCount };
}

/** A request as the server hands it over, with a body whose reads are counted. */
function request(
  options: {
    headers?: Record<string, string>;
    body?: string;
    params?: Record<string, string>;
    query?: string;
    /** The client goes away before its body is complete. */
    aborted?: boolean;
  } = {},
) {
  const reads = { raw: 0, json: 0 };
  const raw = Buffer.from(options.body ?? '');
  const ctx: RequestContext = {
    method: 'POST',
    path: '/test',
    params: options.params ?? {},
    query: new URLSearchParams(options.query ?? ''),
    headers: options.headers ?? {},
    remoteAddress: '127.0.0.1',
    readRaw: async () => {
      reads.raw += 1;
      if (options.aborted) throw new RequestAbortedError();
      return raw;
    },
    readJson: async () => {
      reads.json += 1;
      if (options.aborted) throw new RequestAbortedError();
      return raw.length === 0 ? undefined : JSON.parse(raw.toString());
    },
  };
  return { ctx, reads };
}

const PointSchema = Type.Object({ x: Type.Integer(), y: Type.Integer() }, { additionalProperties: false });

describe('route pipeline: access', () => {
  it('refuses a gamer route without a token (401) before the body is read or the handler runs', async () => {
    const { pipeline, countOf } = buildPipeline();
    let handled = 0;
    const handler = pipeline.handler(
      defineRoute({
        method: 'POST',
        path: '/test',
        access: 'gamer',
        summary: 'test',
        body: jsonBody(PointSchema),
        responses: { 200: 'ok' },
        handler: () => {
          handled += 1;
          return json(200, {});
        },
      }),
    );
    const { ctx, reads } = request({ body: '{"x":1,"y":2}' });
    await expect(handler(ctx)).rejects.toMatchObject({ code: 'VCA_ERR_UNAUTHORIZED' });
    const operator = request({ headers: { authorization: `Bearer ${secrets.operatorTokens[0]}` } });
    await expect(handler(operator.ctx)).rejects.toMatchObject({ code: 'VCA_ERR_FORBIDDEN' });
    expect(reads).toEqual({ raw: 0, json: 0 });
    expect(handled).toBe(0);
    expect(await countOf('VCA_ERR_UNAUTHORIZED')).toBe(1);
    expect(await countOf('VCA_ERR_FORBIDDEN')).toBe(1);
  });

  it("accepts on a node route only the token of the node the path's :id names", async () => {
    const { pipeline } = buildPipeline();
    const credentials = new Credentials(secrets);
    const handler = pipeline.handler(
      defineRoute({
        method: 'PUT',
        path: '/v1/nodes/:id/telemetry',
        access: 'node',
        summary: 'test',
        responses: { 200: 'ok' },
        handler: (ctx) => json(200, { node: ctx.params.id }),
      }),
    );
    const own = request({
      params: { id: 'n-1' },
      headers: { authorization: `Bearer ${credentials.nodeToken('n-1')}` },
    });
    expect(await handler(own.ctx)).toEqual({ status: 200, body: { node: 'n-1' } });
    const other = request({
      params: { id: 'n-1' },
      headers: { authorization: `Bearer ${credentials.nodeToken('n-2')}` },
    });
    await expect(handler(other.ctx)).rejects.toMatchObject({ code: 'VCA_ERR_UNAUTHORIZED' });
  });

  it('refuses to declare a node route whose path names no node', () => {
    const { pipeline } = buildPipeline();
    const route = defineRoute({
      method: 'GET',
      path: '/v1/nodes',
      access: 'node',
      summary: 'test',
      responses: { 200: 'ok' },
      handler: () => json(200, {}),
    });
    expect(() => pipeline.handler(route)).toThrow(/no :id/);
  });

  it('checks a signed route over the raw bytes before the body is parsed', async () => {
    const { pipeline } = buildPipeline();
    const parsed: unknown[] = [];
    const handler = pipeline.handler(
      defineRoute({
        method: 'POST',
        path: '/hook',
        access: 'signed-orchestrator',
        summary: 'test',
        body: parsedBody(PointSchema, (value) => {
          parsed.push(value);
          return value;
        }),
        responses: { 200: 'ok' },
        handler: (_ctx, body) => json(200, body),
      }),
    );
    const t = nowMs / 1000;
    const unsigned = request({ body: '{"nope' });
    await expect(handler(unsigned.ctx)).rejects.toMatchObject({ code: 'VCA_ERR_SIGNATURE' });
    expect(unsigned.reads.json).toBe(0);
    const raw = '{"x":1,"y":2}';
    const signed = request({
      body: raw,
      headers: { 'x-vca-signature': `t=${t},v1=${signBody(secrets.orchestratorSecret, t, raw)}` },
    });
    expect(await handler(signed.ctx)).toEqual({ status: 200, body: { x: 1, y: 2 } });
    expect(parsed).toEqual([{ x: 1, y: 2 }]);
  });

  it('reads a bearer token only from the Authorization header on HTTP routes, never from ?token=', async () => {
    const { pipeline } = buildPipeline();
    const credentials = new Credentials(secrets);
    const routeFor = (access: 'gamer' | 'operator' | 'node') =>
      pipeline.handler(
        defineRoute({
          method: 'GET',
          path: '/v1/test/:id',
          access,
          summary: 'test',
          responses: { 200: 'ok' },
          handler: () => json(200, {}),
        }),
      );
    const tokens = {
      gamer: secrets.gamerTokens[0] as string,
      operator: secrets.operatorTokens[0] as string,
      node: credentials.nodeToken('n-1'),
    };
    for (const access of ['gamer', 'operator', 'node'] as const) {
      const handler = routeFor(access);
      const inQuery = request({
        params: { id: 'n-1' },
        query: `token=${encodeURIComponent(tokens[access])}`,
      });
      await expect(handler(inQuery.ctx)).rejects.toMatchObject({ code: 'VCA_ERR_UNAUTHORIZED' });
      const inHeader = request({
        params: { id: 'n-1' },
        headers: { authorization: `Bearer ${tokens[access]}` },
      });
      expect(await handler(inHeader.ctx)).toEqual({ status: 200, body: {} });
    }
  });

  it('checks a WebSocket route before its own upgrade decision', async () => {
    const { pipeline } = buildPipeline();
    let upgrades = 0;
    const route = pipeline.websocket('/v1/play', 'gamer', {
      upgrade: () => {
        upgrades += 1;
        return {};
      },
      message() {},
    });
    const ctx: UpgradeContext = {
      method: 'GET',
      path: '/v1/play',
      params: {},
      query: new URLSearchParams(`token=${secrets.gamerTokens[0]}`),
      headers: {},
      remoteAddress: '127.0.0.1',
    };
    expect(() => route.upgrade({ ...ctx, query: new URLSearchParams() })).toThrow(VcaError);
    expect(upgrades).toBe(0);
    await route.upgrade(ctx);
    expect(upgrades).toBe(1);
  });
});

describe('route pipeline: body', () => {
  function pointRoute(whenAbsent?: { x: number; y: number }) {
    const seen: Array<{ x: number; y: number }> = [];
    const route = defineRoute({
      method: 'POST',
      path: '/points',
      access: 'public',
      summary: 'test',
      body: jsonBody(PointSchema, whenAbsent === undefined ? {} : { whenAbsent }),
      responses: { 200: 'ok' },
      handler: (_ctx, point) => {
        seen.push(point);
        return json(200, { sum: point.x + point.y });
      },
    });
    return { route, seen };
  }

  it('hands the handler the body checked against the declared schema', async () => {
    const { pipeline } = buildPipeline();
    const { route } = pointRoute();
    expect(await pipeline.handler(route)(request({ body: '{"x":1,"y":2}' }).ctx)).toEqual({
      status: 200,
      body: { sum: 3 },
    });
  });

  it('answers a body that does not match with VCA_ERR_VALIDATION naming the field, counted, handler not run', async () => {
    const { pipeline, countOf } = buildPipeline();
    const { route, seen } = pointRoute();
    const handler = pipeline.handler(route);
    await expect(handler(request({ body: '{"x":1,"y":"2"}' }).ctx)).rejects.toMatchObject({
      code: 'VCA_ERR_VALIDATION',
      extra: { field: 'y' },
    });
    await expect(handler(request().ctx)).rejects.toMatchObject({
      code: 'VCA_ERR_VALIDATION',
      extra: { field: 'body' },
    });
    expect(seen).toEqual([]);
    expect(await countOf('VCA_ERR_VALIDATION')).toBe(2);
  });

  it('uses whenAbsent for a request without a body, and documents such a body as optional', async () => {
    const { pipeline } = buildPipeline();
    const { route, seen } = pointRoute({ x: 0, y: 0 });
    await pipeline.handler(route)(request().ctx);
    expect(seen).toEqual([{ x: 0, y: 0 }]);
    const doc = buildOpenApi([route], '1.0.0');
    expect(doc.paths['/points']?.post).toMatchObject({
      security: [],
      requestBody: { required: false, content: { 'application/json': { schema: { type: 'object' } } } },
    });
  });

  it('counts a body the client abandoned as an abort, not an error, and logs nothing', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const { pipeline, countOf, abortedCount } = buildPipeline(logger);
    const { route, seen } = pointRoute();
    const error = await Promise.resolve(pipeline.handler(route)(request({ aborted: true }).ctx)).catch(
      (err: unknown) => err,
    );
    // Rethrown as it is: the server sees the exchange aborted and answers nobody.
    expect(error).toBeInstanceOf(RequestAbortedError);
    expect(await abortedCount()).toBe(1);
    expect(await countOf('VCA_ERR_INTERNAL')).toBe(0);
    expect(lines).toEqual([]);
    expect(seen).toEqual([]);
  });

  it('turns an unexpected error into VCA_ERR_INTERNAL without its message', async () => {
    const { pipeline, countOf } = buildPipeline();
    const route: ApiRoute = defineRoute({
      method: 'GET',
      path: '/boom',
      access: 'public',
      summary: 'test',
      responses: { 200: 'ok' },
      handler: () => {
        throw new Error('secret detail');
      },
    });
    const error = await Promise.resolve(pipeline.handler(route)(request().ctx)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(VcaError);
    expect(error).toMatchObject({ code: 'VCA_ERR_INTERNAL' });
    expect((error as Error).message).not.toMatch(/secret/);
    expect(await countOf('VCA_ERR_INTERNAL')).toBe(1);
  });
});

describe('http adapter boundary', () => {
  const sourceRoot = path.resolve('src');
  const adapterFiles = ['reply-writer.ts', 'request-reader.ts', 'uws-server.ts', 'ws-sessions.ts'].map(
    (file) => path.join(sourceRoot, 'http', file),
  );
  const files = readdirSync(sourceRoot, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => path.join(sourceRoot, file));

  it('leaves uWebSockets.js to the adapter files: no other source file imports it', () => {
    const importers = files.filter((file) => /from 'uWebSockets\.js'/.test(readFileSync(file, 'utf8')));
    expect(importers.sort()).toEqual(adapterFiles.sort());
  });
});
