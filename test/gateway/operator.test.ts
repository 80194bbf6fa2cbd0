import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../support/fleet-snapshot.js';
import { idleTelemetry, startTestGateway, type TestGateway } from '../support/gateway.js';

let gw: TestGateway;

/** Two ready L4 nodes, one session on render-1, one provisioning node without telemetry. */
beforeAll(async () => {
  gw = await startTestGateway();
  for (const id of ['render-1', 'render-2']) {
    const node = await gw.registerNode(id, 'L4', 1, { region: 'eu-west' });
    expect((await gw.telemetry(id, node.token, idleTelemetry(1))).status).toBe(200);
  }
  await gw.registerNode('render-3', 'GRID K2', 2);
  const session = await gw.request('gamer', 'POST', '/v1/sessions', {
    game: 'unigine-heaven',
    resolution: '1080p',
    fps: 60,
    wait: false,
  });
  expect(session.status).toBe(201);
  // Some traffic that fails, for the error and webhook counters.
  await gw.request('gamer', 'POST', '/v1/sessions', { game: 'half-life-3', resolution: '1080p', fps: 60 });
  await gw.hook('aodh', {
    alarm_id: 'a-1',
    alarm_name: 'gpu-hot',
    previous: 'ok',
    current: 'alarm',
    reason_data: { type: 'threshold' },
  });
});
afterAll(async () => gw?.close());

describe('operator: nodes', () => {
  it('GET /v1/nodes lists every node with state, GPUs and loads', async () => {
    const response = await gw.request('operator', 'GET', '/v1/nodes');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const byId = new Map(response.body.nodes.map((node: any) => [node.id, node]));
    expect([...byId.keys()].sort()).toEqual(['render-1', 'render-2', 'render-3']);
    const first: any = byId.get('render-1');
    const busy = first.sessions === 1 ? first : byId.get('render-2');
    expect(busy).toMatchObject({ state: 'ready', sessions: 1, labels: { region: 'eu-west' } });
    expect(busy.gpus[0]).toMatchObject({ index: 0, model: 'L4', eligible: true, sessions: 1 });
    expect(busy.gpus[0].committed.gpu).toBeGreaterThan(0);
    for (const key of ['committed', 'measured', 'effective', 'capacity'])
      expect(busy.gpus[0]).toHaveProperty(key);
    expect(byId.get('render-3')).toMatchObject({ state: 'provisioning', sessions: 0 });
    expect((byId.get('render-3') as any).gpus).toHaveLength(2);
  });

  it('GET /v1/nodes/:id shows one node with its session ids', async () => {
    const nodes = (await gw.request('operator', 'GET', '/v1/nodes')).body.nodes;
    const busy = nodes.find((node: any) => node.sessions === 1);
    const response = await gw.request('operator', 'GET', `/v1/nodes/${busy.id}`);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ id: busy.id, state: 'ready' });
    expect(response.body.sessionIds).toHaveLength(1);
    const session = await gw.request('gamer', 'GET', `/v1/sessions/${response.body.sessionIds[0]}`);
    expect(session.body).toMatchObject({ state: 'assigned', node: { id: busy.id } });
  });

  it('GET /v1/nodes/:id of an unknown node is a 404 problem', async () => {
    expectProblem(await gw.request('operator', 'GET', '/v1/nodes/render-404'), 404, 'VCA_ERR_NODE_NOT_FOUND');
  });
});

describe('operator: drain and undrain', () => {
  it('drains a busy node with a deadline, undrains it, and refuses undrain of a node that is not draining', async () => {
    const nodes = (await gw.request('operator', 'GET', '/v1/nodes')).body.nodes;
    const busy = nodes.find((node: any) => node.sessions === 1);

    expectProblem(
      await gw.request('operator', 'POST', `/v1/nodes/${busy.id}/undrain`),
      409,
      'VCA_ERR_NODE_STATE',
    );

    const drained = await gw.request('operator', 'POST', `/v1/nodes/${busy.id}/drain`, {
      deadlineSeconds: 600,
    });
    expect(drained.status, JSON.stringify(drained.body)).toBe(200);
    expect(drained.body).toMatchObject({ id: busy.id, state: 'draining', sessions: 1 });
    expect(drained.body.drainDeadline).toBe(gw.clock.now() + 600_000);

    // A draining node takes no new sessions: the next one lands elsewhere.
    const other = await gw.request('gamer', 'POST', '/v1/sessions', {
      game: 'stardew-valley',
      resolution: '1080p',
      fps: 60,
      region: 'eu-west',
      wait: false,
    });
    expect(other.status).toBe(201);
    expect(other.body.node.id).not.toBe(busy.id);

    // Draining again keeps it draining.
    const again = await gw.request('operator', 'POST', `/v1/nodes/${busy.id}/drain`);
    expect([200, 409]).toContain(again.status);
    expect((await gw.request('operator', 'GET', `/v1/nodes/${busy.id}`)).body.state).toBe('draining');

    const undrained = await gw.request('operator', 'POST', `/v1/nodes/${busy.id}/undrain`);
    expect(undrained.status).toBe(200);
    expect(undrained.body).toMatchObject({ id: busy.id, state: 'ready', drainDeadline: null });
    expectProblem(
      await gw.request('operator', 'POST', `/v1/nodes/${busy.id}/undrain`),
      409,
      'VCA_ERR_NODE_STATE',
    );
    expectProblem(
      await gw.request('operator', 'POST', '/v1/nodes/render-404/undrain'),
      404,
      'VCA_ERR_NODE_NOT_FOUND',
    );
    await gw.request('gamer', 'DELETE', `/v1/sessions/${other.body.sessionId}`);
  });

  it('draining an empty node drains and removes it at once', async () => {
    const node = await gw.registerNode('render-empty', 'L4');
    await gw.telemetry('render-empty', node.token, idleTelemetry(1));
    const drained = await gw.request('operator', 'POST', '/v1/nodes/render-empty/drain');
    expect(drained.status).toBe(200);
    expect(drained.body.state).toBe('drained');
    expect((await gw.request('operator', 'GET', '/v1/nodes/render-empty')).status).toBe(404);
  });
});

describe('operator: cluster', () => {
  it('GET /v1/cluster summarizes nodes, GPUs, committed load, capacity, sessions and the autoscaler', async () => {
    const response = await gw.request('operator', 'GET', '/v1/cluster');
    expect(response.status).toBe(200);
    const body = response.body;
    expect(body.nodes).toEqual({ total: 3, byState: { ready: 2, provisioning: 1 } });
    expect(body.gpus).toEqual({ total: 4, eligible: 2 });
    expect(body.committed.gpuEquivalents).toBeCloseTo(0.4, 3);
    expect(body.capacity).toMatchObject({ referenceSlotShare: expect.any(Number) });
    expect(typeof body.capacity.freeReferenceSlots).toBe('number');
    expect(body.sessions).toEqual({ assigned: 1, queued: 0 });
    expect(body).toHaveProperty('autoscaler');
  });
});

describe('operator: metrics', () => {
  it('/metrics exposes allocation, fleet, GPU load, webhook and error series after traffic', async () => {
    const response = await gw.request('operator', 'GET', '/metrics');
    expect(response.status).toBe(200);
    const text: string = response.body;
    expect(text).toMatch(/^vca_sessions_assigned_total\{game="unigine-heaven",resolution="1920x1080"\} 1$/m);
    expect(text).toMatch(/^vca_allocation_duration_seconds_count\{outcome="assigned"\} \d+$/m);
    expect(text).toMatch(/^vca_allocation_duration_seconds_bucket\{le="\+Inf",outcome="assigned"\} \d+$/m);
    expect(text).toMatch(/^vca_nodes\{state="ready"\} 2$/m);
    expect(text).toMatch(/^vca_nodes\{state="provisioning"\} 1$/m);
    expect(text).toMatch(/^vca_nodes\{state="draining"\} 0$/m);
    expect(text).toMatch(
      /^vca_gpu_effective_load_ratio\{node="render-\d",gpu="0",dimension="gpu"\} 0\.\d+$/m,
    );
    expect(text).toMatch(
      /^vca_webhook_events_total\{source="contextualize",action="register-nodes",outcome="applied"\} \d+$/m,
    );
    expect(text).toMatch(/^vca_webhook_events_total\{source="aodh",action="record",outcome="applied"\} 1$/m);
    expect(text).toMatch(/^vca_http_errors_total\{code="VCA_ERR_UNKNOWN_GAME"\} 1$/m);
    expect(text).toMatch(/^# TYPE vca_sessions_assigned_total counter$/m);
    expect(text).toMatch(/^# TYPE vca_allocation_duration_seconds histogram$/m);
  });
});

describe('operator: OpenAPI, health, readiness', () => {
  it('/v1/openapi.json is an OpenAPI 3.1 document listing every route with its request schema', async () => {
    const response = await gw.request('none', 'GET', '/v1/openapi.json');
    expect(response.status).toBe(200);
    const doc = response.body;
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    for (const route of gw.gateway.routes) {
      const openApiPath = route.path.replace(/:([A-Za-z]+)/g, '{$1}');
      const operation = doc.paths[openApiPath]?.[route.method.toLowerCase()];
      expect(operation, `${route.method} ${route.path}`).toBeDefined();
      expect(Object.keys(operation.responses).length, `${route.method} ${route.path}`).toBeGreaterThan(0);
      for (const match of route.path.matchAll(/:([A-Za-z]+)/g)) {
        expect(operation.parameters).toContainEqual(expect.objectContaining({ name: match[1], in: 'path' }));
      }
    }
    const createSession = doc.paths['/v1/sessions'].post;
    const schema = createSession.requestBody.content['application/json'].schema;
    expect(schema).toMatchObject({ type: 'object', additionalProperties: false });
    expect(schema.required).toEqual(expect.arrayContaining(['game', 'resolution', 'fps']));
    expect(schema.properties.fps).toMatchObject({ type: 'integer', minimum: 1 });
    expect(createSession.responses).toHaveProperty('201');
    expect(createSession.responses).toHaveProperty('400');
    expect(
      doc.paths['/v1/nodes/{id}/telemetry'].put.requestBody.content['application/json'].schema,
    ).toMatchObject({
      type: 'object',
    });
    expect(doc.components.securitySchemes).toHaveProperty('gamerToken');
    expect(doc.components.schemas.Problem.properties).toHaveProperty('code');
  });

  it('/healthz and /readyz answer 200', async () => {
    const health = await gw.request('none', 'GET', '/healthz');
    expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await gw.request('none', 'GET', '/readyz');
    expect(ready).toMatchObject({ status: 200, body: { status: 'ready', ready: true } });
  });
});
