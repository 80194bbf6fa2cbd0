/**
 * Latency-aware placement through the gateway: a gamer reports round-trip times per region
 * (`latencies`), is placed in the nearest region with room that the policy in force allows, waits in
 * the queue while none does, and is told the cap (`queued {..., maxLatencyMs}`) again whenever it
 * relaxes. Three regions, one L4 node each; the default policies (50 ms for 5 s, then 100 ms for 20 s,
 * then any reported region). The clock is fake: the test moves it and runs the tick.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem, fleetSnapshot } from '../support/fleet-snapshot.js';
import { idleTelemetry, PlayClient, startTestGateway, type TestGateway } from '../support/gateway.js';

const format = { game: 'unigine-heaven', resolution: '1080p', fps: 60 };
/** The gamer is nearest to eu-west, then eu-central, then us-east. */
const latencies = { 'eu-west': 20, 'eu-central': 70, 'us-east': 150 };
const regionOfNode: Record<string, string> = {
  'render-west': 'eu-west',
  'render-central': 'eu-central',
  'render-east': 'us-east',
};

let gw: TestGateway;
const clients: PlayClient[] = [];
const tokens = new Map<string, string>();

beforeEach(async () => {
  gw = await startTestGateway({
    placement: {
      latencyPolicies: [
        { maxLatencyMs: 50, forSeconds: 5 },
        { maxLatencyMs: 100, forSeconds: 20 },
      ],
    },
  });
  for (const [id, region] of Object.entries(regionOfNode)) {
    const labels: Record<string, string> =
      id === 'render-east' ? { region, 'vca.ping-port': '7000' } : { region };
    const { token } = await gw.registerNode(id, 'L4', 1, labels);
    tokens.set(id, token);
  }
  await freshTelemetry();
});
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await gw?.close();
});

/** Every node reports (idle GPUs: committed load decides), so a moved clock leaves no GPU stale. */
async function freshTelemetry(): Promise<void> {
  for (const [id, token] of tokens)
    expect((await gw.telemetry(id, token, idleTelemetry(1))).status).toBe(200);
}

/** Fills a region's node with REST sessions pinned to it; returns their ids. */
async function fill(region: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 64; i++) {
    const response = await gw.request('gamer', 'POST', '/v1/sessions', { ...format, region, wait: false });
    if (response.status === 503) return ids;
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    ids.push(response.body.sessionId);
  }
  throw new Error(`region ${region} never filled`);
}

async function gamer(): Promise<PlayClient> {
  const client = await PlayClient.connect(gw.wsUrl);
  clients.push(client);
  client.send({ type: 'request', ...format, latencies });
  return client;
}

async function metric(name: string): Promise<string> {
  const text = (await gw.request('operator', 'GET', '/metrics')).body as string;
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .join('\n');
}

describe('latency-aware placement: nearest region full', () => {
  it('queues at 50 ms, then places in the second region when the policy relaxes to 100 ms', async () => {
    await fill('eu-west');
    const client = await gamer();
    const queued = await client.next('queued');
    expect(queued).toMatchObject({ position: 1, maxLatencyMs: 50 });

    // Capacity elsewhere does not matter while the cap excludes it.
    gw.clock.advance(4_900);
    await freshTelemetry();
    await gw.tick();
    expect((await gw.request('gamer', 'GET', `/v1/sessions/${queued.sessionId}`)).body).toMatchObject({
      state: 'queued',
      maxLatencyMs: 50,
    });

    gw.clock.advance(100);
    await freshTelemetry();
    await gw.tick();
    const assigned = await client.next('assigned');
    expect(assigned).toMatchObject({
      sessionId: queued.sessionId,
      node: { id: 'render-central' },
      region: 'eu-central',
      latencyMs: 70,
    });
    expect(await metric('vca_latency_policy_relaxations_total')).toContain(
      'vca_latency_policy_relaxations_total 1',
    );
    expect(await metric('vca_placement_latency_ms_sum')).toContain('vca_placement_latency_ms_sum 70');
  });

  it('places at once in the nearest region when room appears there first', async () => {
    const fillers = await fill('eu-west');
    const client = await gamer();
    const queued = await client.next('queued');
    expect(queued.maxLatencyMs).toBe(50);

    gw.clock.advance(1_000);
    expect((await gw.request('gamer', 'DELETE', `/v1/sessions/${fillers[0]}`)).status).toBe(200);
    const assigned = await client.next('assigned');
    expect(assigned).toMatchObject({ node: { id: 'render-west' }, region: 'eu-west', latencyMs: 20 });
    expect(await metric('vca_latency_policy_relaxations_total')).toContain(
      'vca_latency_policy_relaxations_total 0',
    );
  });

  it('tells a client still queued each new cap, and after the last policy takes any reported region', async () => {
    await fill('eu-west');
    await fill('eu-central');
    const client = await gamer();
    expect(await client.next('queued')).toMatchObject({ position: 1, maxLatencyMs: 50 });

    gw.clock.advance(5_000);
    await freshTelemetry();
    await gw.tick();
    expect(await client.next('queued')).toMatchObject({ position: 1, maxLatencyMs: 100 });

    gw.clock.advance(20_000);
    await freshTelemetry();
    await gw.tick();
    expect(await client.next('assigned')).toMatchObject({
      node: { id: 'render-east' },
      region: 'us-east',
      latencyMs: 150,
    });
    expect(await metric('vca_latency_policy_relaxations_total')).toContain(
      'vca_latency_policy_relaxations_total 2',
    );
  });
});

describe('latency-aware placement: the request field', () => {
  const bad: Array<[string, unknown, string]> = [
    ['0 ms', { 'eu-west': 0 }, 'latencies.eu-west'],
    ['a negative time', { 'eu-west': -5 }, 'latencies.eu-west'],
    ['over 10,000 ms', { 'eu-west': 10_001 }, 'latencies.eu-west'],
    ['a string', { 'eu-west': '20' }, 'latencies.eu-west'],
    ['65 regions', Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`r${i}`, 10])), 'latencies'],
    ['not an object', [20], 'latencies'],
  ];

  it.each(bad)('%s: 400 naming the field, nothing changes', async (_name, value, field) => {
    const before = await fleetSnapshot(gw);
    const response = await gw.request('gamer', 'POST', '/v1/sessions', { ...format, latencies: value });
    expectProblem(response, 400, 'VCA_ERR_VALIDATION', field);
    expect(await fleetSnapshot(gw)).toEqual(before);
  });

  it('the play socket answers the same with a validation error', async () => {
    const client = await PlayClient.connect(gw.wsUrl);
    clients.push(client);
    client.send({ type: 'request', ...format, latencies: { 'eu-west': 10_001 } });
    expect(await client.next('error')).toMatchObject({
      code: 'VCA_ERR_VALIDATION',
      field: 'latencies.eu-west',
    });
  });

  it('accepts 64 regions and 10,000 ms', async () => {
    const many = Object.fromEntries(Array.from({ length: 63 }, (_, i) => [`r${i}`, 10_000]));
    const response = await gw.request('gamer', 'POST', '/v1/sessions', {
      ...format,
      latencies: { ...many, 'us-east': 10_000 },
      wait: false,
    });
    // Within the last policy's reach only after 25 s: refused now (wait: false), not invalid.
    expect(response.status, JSON.stringify(response.body)).toBe(503);
  });

  it('an unknown region is dropped with a warning, never an error; only unknown ones: placed as if none', async () => {
    const some = await gw.request('gamer', 'POST', '/v1/sessions', {
      ...format,
      latencies: { 'mars-1': 5, 'us-east': 30 },
    });
    expect(some.status, JSON.stringify(some.body)).toBe(201);
    expect(some.body).toMatchObject({ node: { id: 'render-east' }, region: 'us-east', latencyMs: 30 });
    expect(some.body.warnings).toEqual([expect.stringContaining('latencies.mars-1')]);

    const none = await gw.request('gamer', 'POST', '/v1/sessions', { ...format, latencies: { 'mars-1': 5 } });
    expect(none.status, JSON.stringify(none.body)).toBe(201);
    expect(none.body.warnings).toHaveLength(1);
    expect(none.body.latencyMs).toBeUndefined();
  });

  it('without latencies the reply is as before: no region latency, no cap, no warnings', async () => {
    const response = await gw.request('gamer', 'POST', '/v1/sessions', format);
    expect(response.status).toBe(201);
    expect(response.body).not.toHaveProperty('latencyMs');
    expect(response.body).not.toHaveProperty('maxLatencyMs');
    expect(response.body).not.toHaveProperty('warnings');
  });
});

describe('GET /v1/regions', () => {
  it('lists each region with ready nodes and one ping URL, from the vca.ping-port label or the default', async () => {
    await gw.registerNode('render-west-2', 'L4', 1, { region: 'eu-west' }); // provisioning: not counted
    const response = await gw.request('gamer', 'GET', '/v1/regions');
    expect(response.status).toBe(200);
    expect(response.body.regions).toEqual([
      { region: 'eu-central', pingUrl: 'http://127.0.0.1:9836/ping', nodes: 1 },
      { region: 'eu-west', pingUrl: 'http://127.0.0.1:9836/ping', nodes: 1 },
      { region: 'us-east', pingUrl: 'http://127.0.0.1:7000/ping', nodes: 1 },
    ]);
    expect((await gw.request('none', 'GET', '/v1/regions')).status).toBe(401);
  });
});

describe('latency-aware placement: regions named like Object.prototype members', () => {
  let named: TestGateway;
  beforeEach(async () => {
    named = await startTestGateway({
      placement: { latencyPolicies: [], allowUnreportedRegions: true },
    });
    for (const region of ['constructor', '__proto__', 'eu-west']) {
      const id = `render-${region.replaceAll('_', 'x')}`;
      const { token } = await named.registerNode(id, 'L4', 1, { region });
      expect((await named.telemetry(id, token, idleTelemetry(1))).status).toBe(200);
    }
  });
  afterEach(async () => named?.close());

  it('keeps a reported latency to a region named "__proto__" and answers it', async () => {
    const response = await named.request('gamer', 'POST', '/v1/sessions', {
      ...format,
      region: '__proto__',
      latencies: JSON.parse('{"__proto__": 30}'),
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(response.body).toMatchObject({ region: '__proto__', latencyMs: 30 });
    expect(response.body).not.toHaveProperty('warnings');
  });

  it('answers latencyMs null, not a prototype member, for an unreported region named "constructor"', async () => {
    for (const region of ['constructor', '__proto__']) {
      const response = await named.request('gamer', 'POST', '/v1/sessions', {
        ...format,
        region,
        latencies: { 'eu-west': 20 },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      expect(response.body).toMatchObject({ region, latencyMs: null });
    }
  });
});
