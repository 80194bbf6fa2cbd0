/** Specification of the path router: params, precedence, 404 versus 405. */

import { describe, expect, it } from 'vitest';
import { VcaError } from '../../src/errors.js';
import { Router } from '../../src/http/router.js';

function buildRouter(): Router<string> {
  const router = new Router<string>();
  router.add('GET', '/v1/nodes', 'list');
  router.add('GET', '/v1/nodes/:id', 'get');
  router.add('POST', '/v1/nodes/:id/drain', 'drain');
  router.add('GET', '/v1/nodes/stats', 'stats');
  router.add('PUT', '/v1/nodes/:id/telemetry', 'telemetry');
  return router;
}

describe('http router', () => {
  it('matches static routes and decodes parameters', () => {
    const router = buildRouter();
    expect(router.match('GET', '/v1/nodes')).toEqual({ kind: 'found', value: 'list', params: {} });
    expect(router.match('POST', '/v1/nodes/gpu%2D1/drain')).toEqual({
      kind: 'found',
      value: 'drain',
      params: { id: 'gpu-1' },
    });
  });

  it('prefers a static segment and falls back to the parameter for other methods', () => {
    const router = buildRouter();
    expect(router.match('GET', '/v1/nodes/stats')).toMatchObject({ value: 'stats', params: {} });
    expect(router.match('PUT', '/v1/nodes/stats/telemetry')).toMatchObject({
      value: 'telemetry',
      params: { id: 'stats' },
    });
  });

  it('reports the allowed methods when only the method is wrong', () => {
    const router = buildRouter();
    expect(router.match('DELETE', '/v1/nodes/n1')).toEqual({ kind: 'method-not-allowed', allow: ['GET'] });
    expect(router.match('DELETE', '/v1/nodes/stats')).toEqual({ kind: 'method-not-allowed', allow: ['GET'] });
  });

  it('reports not-found for unknown paths, extra segments and empty parameters', () => {
    const router = buildRouter();
    expect(router.match('GET', '/v1/other')).toEqual({ kind: 'not-found' });
    expect(router.match('GET', '/v1/nodes/n1/extra/more')).toEqual({ kind: 'not-found' });
    expect(router.match('POST', '/v1/nodes//drain')).toEqual({ kind: 'not-found' });
  });

  it('rejects malformed percent-encoding with a 400 VcaError', () => {
    const router = buildRouter();
    expect(() => router.match('GET', '/v1/nodes/%zz')).toThrow(VcaError);
    try {
      router.match('GET', '/v1/nodes/%E0%A4%A');
    } catch (err) {
      expect(err).toMatchObject({ code: 'VCA_ERR_VALIDATION', status: 400 });
    }
  });

  it('refuses ambiguous or duplicate registrations at start-up', () => {
    const router = buildRouter();
    expect(() => router.add('GET', '/v1/nodes/:nodeId/x', 'clash')).toThrow(/names parameter/);
    expect(() => router.add('GET', '/v1/nodes/:id', 'again')).toThrow(/registered twice/);
    expect(() => router.add('GET', 'v1/nodes', 'relative')).toThrow(/must start/);
  });
});
