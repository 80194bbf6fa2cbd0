/**
 * Test support for the gateway integration tests: a snapshot of everything a request could change
 * (nodes as the operator API shows them, the store's load audit, the queue) and the problem+json check
 * every refused request must pass.
 */
import { expect } from 'vitest';
import { signBody } from '../../src/http/credentials.js';
import { type TestGateway, testCredentials } from './gateway.js';

export interface FleetSnapshot {
  nodes: unknown;
  audit: unknown;
  queue: Array<[string, number]>;
}

/** What a refused request must leave exactly as it was. */
export async function fleetSnapshot(gw: TestGateway): Promise<FleetSnapshot> {
  const nodes = await gw.request('operator', 'GET', '/v1/nodes');
  expect(nodes.status).toBe(200);
  const { store } = gw.gateway.vca;
  return {
    nodes: nodes.body,
    audit: await store.audit(),
    queue: [...(await store.queuePositions())],
  };
}

/** An RFC 9457 problem with the given status and stable code (and, for validation, the field). */
export function expectProblem(
  response: { status: number; body: any; headers?: Headers },
  status: number,
  code: string,
  field?: string | RegExp,
): void {
  const context = JSON.stringify(response.body);
  expect(response.status, context).toBe(status);
  if (response.headers) {
    expect(response.headers.get('content-type'), context).toMatch(/^application\/problem\+json/);
  }
  expect(response.body, context).toMatchObject({ status, code });
  expect(typeof response.body.type, context).toBe('string');
  expect(typeof response.body.title, context).toBe('string');
  if (field instanceof RegExp) expect(response.body.field, context).toMatch(field);
  else if (field !== undefined) expect(response.body.field, context).toBe(field);
}

/** Posts raw text to a webhook route as the orchestrator does, keeping the response headers. */
export function postHook(
  gw: TestGateway,
  kind: 'contextualize' | 'aodh' | 'notifications',
  raw: string,
  options: { query?: string; timestampSeconds?: number; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (kind === 'contextualize') {
    const t = options.timestampSeconds ?? Math.floor(gw.clock.now() / 1000);
    headers['x-vca-signature'] = `t=${t},v1=${signBody(testCredentials.orchestratorSecret, t, raw)}`;
  } else {
    headers['x-vca-hook-secret'] = testCredentials.orchestratorSecret;
  }
  return gw.request('none', 'POST', `/v1/hooks/${kind}${options.query ?? ''}`, raw, {
    ...headers,
    ...options.headers,
  });
}
