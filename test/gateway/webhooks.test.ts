import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../../kit/polling.js';
import { expectProblem, fleetSnapshot, postHook } from '../support/fleet-snapshot.js';
import { idleTelemetry, startTestGateway, type TestGateway } from '../support/gateway.js';

const fixtureDir = path.resolve(import.meta.dirname, '../fixtures/webhooks');
const fixtureText = (name: string) => readFileSync(path.join(fixtureDir, name), 'utf8');
const fixture = (name: string) => JSON.parse(fixtureText(name));

/** The fixtures this file covers; a new fixture must get a test here. */
const covered = [
  'aodh-event-alarm-autoscaling-end.json',
  'aodh-threshold-alarm-gpu-temperature.json',
  'ceilometer-2014-notification-alarm.json',
  'ceilometer-http-publisher-events.json',
  'contextualize-scale-down-count.json',
  'contextualize-scale-up.json',
  'oslo-notification-autoscaling-end-scale-down.json',
];

let gw: TestGateway;
afterEach(async () => gw?.close());

/** The group the Heat and contextualization fixtures name: count drains stay inside it. */
const fixtureGroup = 'rrvc-ASGroup-nyywzf4x5hif';

/**
 * Two ready L4 nodes of the fixtures' group, one session each: `heavy` hosts Unigine Heaven (0.4 of a GPU), `light` Stardew
 * Valley (0.05). Same state, same session count: only committed load tells the drain victim.
 */
async function fleetWithLoad(gateway: TestGateway): Promise<void> {
  for (const [id, region] of [
    ['heavy', 'r1'],
    ['light', 'r2'],
  ] as const) {
    const node = await gateway.registerNode(id, 'L4', 1, { region }, { group: fixtureGroup });
    expect((await gateway.telemetry(id, node.token, idleTelemetry(1))).status).toBe(200);
  }
  for (const [game, region] of [
    ['unigine-heaven', 'r1'],
    ['stardew-valley', 'r2'],
  ] as const) {
    const created = await gateway.request('gamer', 'POST', '/v1/sessions', {
      game,
      resolution: '1080p',
      fps: 60,
      region,
      wait: false,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }
}

async function nodeStates(gateway: TestGateway): Promise<Record<string, string>> {
  const listed = await gateway.request('operator', 'GET', '/v1/nodes');
  return Object.fromEntries(listed.body.nodes.map((node: any) => [node.id, node.state]));
}

/** The aodh event alarm fixture, carrying the oslo scale-down notification instead of its scale-up. */
function aodhAlarmOnOsloScaleDown(): unknown {
  const alarm = fixture('aodh-event-alarm-autoscaling-end.json');
  const oslo = fixture('oslo-notification-autoscaling-end-scale-down.json');
  alarm.reason_data.event.message_id = oslo.message_id;
  alarm.reason_data.event.traits = [
    ['service', 1, oslo.publisher_id],
    ['groupname', 1, oslo.payload.groupname],
    ['adjustment', 2, oslo.payload.adjustment],
    ['adjustment_type', 1, oslo.payload.adjustment_type],
    ['capacity', 2, oslo.payload.capacity],
  ];
  return alarm;
}

describe('webhooks: every fixture', () => {
  it('covers every file in test/fixtures/webhooks', () => {
    expect(readdirSync(fixtureDir).sort()).toEqual(covered);
  });

  it('contextualize-scale-up registers render-7 with two GRID K2 GPUs in eu-west and hands out its credentials', async () => {
    gw = await startTestGateway();
    const result = await gw.hook('contextualize', fixture('contextualize-scale-up.json'));
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(result.body).toMatchObject({
      eventId: 'contextualize:ctx-2026-11-20T12:03:42Z-rrvc-up-1',
      action: 'register-nodes',
      replayed: false,
      registered: [{ id: 'render-7', state: 'provisioning', created: true }],
    });
    const [registered] = result.body.registered;
    expect(typeof registered.token).toBe('string');
    expect(registered.token.length).toBeGreaterThan(20);
    expect(registered.ticketKey).toMatch(/^[0-9a-f]{64}$/);

    const node = await gw.request('operator', 'GET', '/v1/nodes/render-7');
    expect(node.status).toBe(200);
    expect(node.body).toMatchObject({
      id: 'render-7',
      host: '10.20.0.17',
      port: 5901,
      protocol: 'turbovnc',
      state: 'provisioning',
      group: 'rrvc-ASGroup-nyywzf4x5hif',
      labels: { region: 'eu-west', zone: 'eu-west-1a' },
    });
    expect(node.body.gpus).toHaveLength(2);
    expect(node.body.gpus.map((gpu: any) => gpu.model)).toEqual(['GRID K2', 'GRID K2']);

    // The token it got is the node's own: its telemetry is accepted.
    expect((await gw.telemetry('render-7', registered.token, idleTelemetry(2))).status).toBe(200);
  });

  it('contextualize-scale-down-count drains the least committed node and reports it', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const result = await gw.hook('contextualize', fixture('contextualize-scale-down-count.json'));
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(result.body).toMatchObject({
      action: 'drain-count',
      draining: [{ id: 'light', state: 'draining' }],
      shortfall: 0,
      replayed: false,
    });
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining' });
  });

  it('oslo-notification-autoscaling-end-scale-down on /v1/hooks/notifications drains one victim', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const result = await gw.hook(
      'notifications',
      fixture('oslo-notification-autoscaling-end-scale-down.json'),
    );
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(result.body.events).toHaveLength(1);
    expect(result.body.events[0]).toMatchObject({
      eventId: 'notification:c1f0e9a2-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
      source: 'oslo-notification',
      eventType: 'orchestration.autoscaling.end',
      action: 'heat-resize',
      group: 'rrvc-ASGroup-nyywzf4x5hif',
      capacity: { after: 4, adjustment: -1, adjustmentType: 'change_in_capacity' },
      draining: [{ id: 'light', state: 'draining' }],
      replayed: false,
    });
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining' });
  });

  it('the same notification wrapped in an oslo.message envelope drains one victim', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const envelope = {
      'oslo.version': '2.0',
      'oslo.message': fixtureText('oslo-notification-autoscaling-end-scale-down.json'),
    };
    const result = await gw.hook('notifications', envelope);
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(result.body.events[0]).toMatchObject({
      action: 'heat-resize',
      draining: [{ id: 'light', state: 'draining' }],
    });
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining' });
  });

  it.each([
    ['aodh-event-alarm-autoscaling-end.json', 'orchestration.autoscaling.end'],
    ['aodh-threshold-alarm-gpu-temperature.json', 'alarm.threshold'],
  ])('%s on /v1/hooks/aodh is recorded and changes no node', async (name, eventType) => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const before = await fleetSnapshot(gw);
    const result = await gw.hook('aodh', fixture(name));
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(result.body).toMatchObject({
      source: 'aodh',
      eventType,
      action: 'record',
      registered: [],
      draining: [],
      replayed: false,
    });
    expect(await fleetSnapshot(gw)).toEqual(before);
  });

  it('ceilometer-2014-notification-alarm on /v1/hooks/aodh?action=UP is recorded', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const before = await fleetSnapshot(gw);
    const result = await gw.hook('aodh', fixture('ceilometer-2014-notification-alarm.json'), '?action=UP');
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(result.body).toMatchObject({
      eventId: 'notification:738be905-1ec3-47e3-811a-ab7975426567',
      source: 'aodh',
      eventType: 'orchestration.autoscaling.start',
      action: 'record',
      group: 'AS4-ASGroup-nyywzf4x5hif',
      capacity: { before: 1, adjustment: 1, adjustmentType: 'change_in_capacity' },
      replayed: false,
    });
    expect(await fleetSnapshot(gw)).toEqual(before);
  });

  it('ceilometer-http-publisher-events on /v1/hooks/notifications records two events', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const before = await fleetSnapshot(gw);
    const result = await gw.hook('notifications', fixture('ceilometer-http-publisher-events.json'));
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(result.body.events).toHaveLength(2);
    expect(result.body.events).toMatchObject([
      {
        eventId: 'notification:7e2b9c11-0f3a-4d5e-9b8c-1a2b3c4d5e6f',
        source: 'ceilometer-event',
        eventType: 'orchestration.autoscaling.start',
        action: 'record',
        capacity: { before: 4, adjustment: 1 },
        replayed: false,
      },
      {
        eventId: 'notification:8f3cad22-1a4b-4e6f-8c9d-2b3c4d5e6f7a',
        source: 'ceilometer-event',
        eventType: 'orchestration.autoscaling.end',
        action: 'record',
        capacity: { after: 5, adjustment: 1 },
        replayed: false,
      },
    ]);
    expect(await fleetSnapshot(gw)).toEqual(before);
  });
});

describe('webhooks: replays change nothing', () => {
  it.each([
    ['contextualize', 'contextualize-scale-up.json', ''],
    ['contextualize', 'contextualize-scale-down-count.json', ''],
    ['notifications', 'oslo-notification-autoscaling-end-scale-down.json', ''],
    ['notifications', 'ceilometer-http-publisher-events.json', ''],
    ['aodh', 'aodh-event-alarm-autoscaling-end.json', ''],
    ['aodh', 'aodh-threshold-alarm-gpu-temperature.json', ''],
    ['aodh', 'ceilometer-2014-notification-alarm.json', '?action=UP'],
  ] as const)('%s %s posted twice: same result, replayed, no second effect', async (kind, name, query) => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const first = await gw.hook(kind, fixture(name), query);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const afterFirst = await fleetSnapshot(gw);
    const second = await gw.hook(kind, fixture(name), query);
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    const strip = (body: any) => {
      const events = 'events' in body ? body.events : [body];
      return events.map(({ replayed, ...rest }: any) => rest);
    };
    expect(strip(second.body)).toEqual(strip(first.body));
    const events = 'events' in second.body ? second.body.events : [second.body];
    for (const event of events) expect(event.replayed).toBe(true);
    expect(await fleetSnapshot(gw)).toEqual(afterFirst);
  });

  it('a replayed scale-down by count does not pick a second victim', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const first = await gw.hook('contextualize', fixture('contextualize-scale-down-count.json'));
    const second = await gw.hook('contextualize', fixture('contextualize-scale-down-count.json'));
    expect(first.body.draining).toEqual([{ id: 'light', state: 'draining' }]);
    expect(second.body).toMatchObject({ replayed: true, draining: [{ id: 'light', state: 'draining' }] });
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining' });
  });

  it('one Heat notification through notifications, as an Aodh event alarm and in an oslo envelope drains once', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const oslo = await gw.hook('notifications', fixture('oslo-notification-autoscaling-end-scale-down.json'));
    expect(oslo.body.events[0]).toMatchObject({ draining: [{ id: 'light' }], replayed: false });
    const afterFirst = await fleetSnapshot(gw);

    const alarm = await gw.hook('aodh', aodhAlarmOnOsloScaleDown());
    expect(alarm.status, JSON.stringify(alarm.body)).toBe(200);
    expect(alarm.body).toMatchObject({
      eventId: 'notification:c1f0e9a2-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
      replayed: true,
      draining: [{ id: 'light' }],
    });
    const envelope = await gw.hook('notifications', {
      'oslo.message': fixtureText('oslo-notification-autoscaling-end-scale-down.json'),
    });
    expect(envelope.body.events[0]).toMatchObject({ replayed: true });
    expect(await fleetSnapshot(gw)).toEqual(afterFirst);
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining' });
  });

  it('the Aodh event alarm first, then the raw notification: still one drain', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const alarm = await gw.hook('aodh', aodhAlarmOnOsloScaleDown());
    expect(alarm.body).toMatchObject({
      action: 'heat-resize',
      draining: [{ id: 'light', state: 'draining' }],
      replayed: false,
    });
    const oslo = await gw.hook('notifications', fixture('oslo-notification-autoscaling-end-scale-down.json'));
    expect(oslo.body.events[0]).toMatchObject({ replayed: true });
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining' });
  });

  it('a replay is still a replay after the raw bytes differ in whitespace only', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const raw = fixtureText('contextualize-scale-down-count.json');
    const first = await postHook(gw, 'contextualize', raw);
    const second = await postHook(gw, 'contextualize', JSON.stringify(JSON.parse(raw)));
    expect(first.body.replayed).toBe(false);
    expect(second.body.replayed).toBe(true);
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining' });
  });
});

describe('webhooks: drained callback', () => {
  interface Attempt {
    method: string;
    url: string;
    contentType: string;
    idempotencyKey: string;
    body: string;
  }
  let callbackServer: http.Server | undefined;
  afterEach(async () => {
    await gw?.close();
    await new Promise<void>((resolve) =>
      callbackServer ? callbackServer.close(() => resolve()) : resolve(),
    );
    callbackServer = undefined;
  });

  /** An orchestrator on port 0 that records every callback and answers the n-th (from 1) with `answer(n)`. */
  async function startReceiver(
    answer: (attempt: number) => { status: number; headers?: Record<string, string> },
  ): Promise<{ attempts: Attempt[]; url: string }> {
    const attempts: Attempt[] = [];
    callbackServer = http.createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        attempts.push({
          method: request.method ?? '',
          url: request.url ?? '',
          contentType: request.headers['content-type'] ?? '',
          idempotencyKey: String(request.headers['idempotency-key'] ?? ''),
          body,
        });
        const { status, headers = {} } = answer(attempts.length);
        response.writeHead(status, headers);
        response.end();
      });
    });
    await new Promise<void>((resolve) => callbackServer!.listen(0, '127.0.0.1', resolve));
    const { port } = callbackServer.address() as AddressInfo;
    return { attempts, url: `http://127.0.0.1:${port}/cb` };
  }

  /** Waits (real time: the outbox runs on the gateway's tick) until `attempts` holds `count` callbacks. */
  async function attemptsReach(attempts: Attempt[], count: number, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (attempts.length < count && Date.now() < deadline) await sleep(20);
    expect(attempts).toHaveLength(count);
  }

  async function metricsText(): Promise<string> {
    return String((await gw.request('operator', 'GET', '/metrics')).body);
  }

  /** Waits until the gateway has rescheduled a failed attempt (its clock may move on only then). */
  async function retriedOnce(): Promise<void> {
    const retried = /vca_outbound_calls_total\{kind="node-drained",outcome="retried"\} 1\b/;
    const deadline = Date.now() + 5_000;
    while (!retried.test(await metricsText()) && Date.now() < deadline) await sleep(20);
    expect(await metricsText()).toMatch(retried);
  }

  it('retries a failing callback and delivers {event: node-drained} once the draining node empties', async () => {
    const receiver = await startReceiver((attempt) => ({ status: attempt === 1 ? 500 : 200 }));
    gw = await startTestGateway({
      telemetry: { reportIntervalSeconds: 0.2 },
      hooks: { drainedCallbackUrl: receiver.url, callbackBackoffSeconds: 0.05 },
    });
    const node = await gw.registerNode('render-1', 'L4');
    await gw.telemetry('render-1', node.token, idleTelemetry(1));
    const session = await gw.request('gamer', 'POST', '/v1/sessions', {
      game: 'unigine-heaven',
      resolution: '1080p',
      fps: 60,
    });
    expect(session.status).toBe(201);
    const drain = await gw.request('operator', 'POST', '/v1/nodes/render-1/drain', { deadlineSeconds: 600 });
    expect(drain.status).toBe(200);
    expect(drain.body.state).toBe('draining');

    // Still hosting a session: not drained, no callback.
    await sleep(150);
    expect(receiver.attempts).toHaveLength(0);

    expect((await gw.request('gamer', 'DELETE', `/v1/sessions/${session.body.sessionId}`)).status).toBe(200);
    await attemptsReach(receiver.attempts, 1);
    await retriedOnce();
    // The retry is due after the backoff (at most 75 ms) on the gateway's clock.
    gw.clock.advance(100);
    await attemptsReach(receiver.attempts, 2);
    const [first, second] = receiver.attempts;
    for (const attempt of receiver.attempts) {
      expect(attempt).toMatchObject({ method: 'POST', url: '/cb' });
      expect(attempt.contentType).toMatch(/^application\/json/);
      expect(JSON.parse(attempt.body)).toEqual({
        event: 'node-drained',
        node: { id: 'render-1', host: '127.0.0.1', group: 'test-group' },
      });
    }
    // One callback, one key: a receiver drops a duplicate delivered twice.
    expect(first!.idempotencyKey).toMatch(/^node-drained:render-1:\d+$/);
    expect(second!.idempotencyKey).toBe(first!.idempotencyKey);

    const metrics = await metricsText();
    expect(metrics).toMatch(/vca_outbound_calls_total\{kind="node-drained",outcome="delivered"\} 1\b/);
    expect(metrics).toMatch(/vca_outbound_calls_total\{kind="node-drained",outcome="retried"\} 1\b/);
    expect(metrics).not.toMatch(/vca_outbound_calls_total\{kind="node-drained",outcome="failed"\}/);
    expect(metrics).toMatch(/vca_callback_outbox_entries 0\b/);
    // Drained nodes are removed from the fleet.
    expect((await gw.request('operator', 'GET', '/v1/nodes/render-1')).status).toBe(404);
    // No further attempts once delivered.
    gw.clock.advance(60_000);
    await sleep(400);
    expect(receiver.attempts).toHaveLength(2);
  });

  it('waits as long as a 503 with Retry-After: 1 asks, then delivers once', async () => {
    const receiver = await startReceiver((attempt) =>
      attempt === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 },
    );
    gw = await startTestGateway({
      // A fast tick; a backoff of its own far longer than the one second asked for.
      telemetry: { reportIntervalSeconds: 0.2 },
      hooks: { drainedCallbackUrl: receiver.url, callbackBackoffSeconds: 60 },
    });
    await gw.registerNode('render-1', 'L4');
    const drain = await gw.request('operator', 'POST', '/v1/nodes/render-1/drain', { deadlineSeconds: 600 });
    expect(drain.body.state).toBe('drained');
    await attemptsReach(receiver.attempts, 1);
    await retriedOnce();
    expect(await gw.gateway.vca.store.outboxLength()).toBe(1);

    gw.clock.advance(999);
    await sleep(400);
    expect(receiver.attempts).toHaveLength(1);
    gw.clock.advance(1);
    await attemptsReach(receiver.attempts, 2);
    await sleep(400);
    expect(receiver.attempts).toHaveLength(2);
    expect(await gw.gateway.vca.store.outboxLength()).toBe(0);
    const metrics = await metricsText();
    expect(metrics).toMatch(/vca_outbound_calls_total\{kind="node-drained",outcome="delivered"\} 1\b/);
    expect(metrics).toMatch(/vca_outbound_calls_total\{kind="node-drained",outcome="retried"\} 1\b/);
  });

  it('gives a callback up at once when the orchestrator refuses it with a 4xx other than 408 and 429', async () => {
    const receiver = await startReceiver(() => ({ status: 400 }));
    gw = await startTestGateway({
      telemetry: { reportIntervalSeconds: 0.2 },
      hooks: { drainedCallbackUrl: receiver.url },
    });
    await gw.registerNode('render-1', 'L4');
    await gw.request('operator', 'POST', '/v1/nodes/render-1/drain', { deadlineSeconds: 600 });
    await attemptsReach(receiver.attempts, 1);
    gw.clock.advance(600_000);
    await sleep(400);
    expect(receiver.attempts).toHaveLength(1);
    expect(await gw.gateway.vca.store.outboxLength()).toBe(0);
    expect(await metricsText()).toMatch(
      /vca_outbound_calls_total\{kind="node-drained",outcome="failed"\} 1\b/,
    );
  });

  it('completes drained callbacks without sending anything when no URL is configured', async () => {
    gw = await startTestGateway({ telemetry: { reportIntervalSeconds: 0.2 } });
    await gw.registerNode('render-1', 'L4');
    await gw.request('operator', 'POST', '/v1/nodes/render-1/drain', { deadlineSeconds: 600 });
    const deadline = Date.now() + 5_000;
    while ((await gw.gateway.vca.store.outboxLength()) > 0 && Date.now() < deadline) await sleep(20);
    expect(await gw.gateway.vca.store.outboxLength()).toBe(0);
    expect(await metricsText()).not.toMatch(/vca_outbound_calls_total\{kind="node-drained"/);
  });
});

describe('webhooks: all or nothing, and a refusal is not remembered', () => {
  /** fleetWithLoad plus `idle`: ready, empty, so draining it would drain and remove it at once. */
  async function fleetWithIdleNode(gateway: TestGateway): Promise<void> {
    await fleetWithLoad(gateway);
    const idle = await gateway.registerNode('idle', 'L4', 1, { region: 'r3' }, { group: fixtureGroup });
    expect((await gateway.telemetry('idle', idle.token, idleTelemetry(1))).status).toBe(200);
  }

  it('a scale-down naming a ready node and ghost-node answers 404 naming nodes.1 and drains nothing; the corrected retry under the same eventId applies', async () => {
    gw = await startTestGateway();
    await fleetWithIdleNode(gw);
    const before = await fleetSnapshot(gw);
    const refused = await gw.hook('contextualize', {
      eventId: 'e1',
      event: 'scale-down',
      group: 'g',
      nodes: ['idle', 'ghost-node'],
    });
    expectProblem(refused, 404, 'VCA_ERR_NODE_NOT_FOUND', 'nodes.1');
    expect(refused.body).toMatchObject({ eventId: 'contextualize:e1', replayed: false });
    expect(refused.body.detail).toContain('ghost-node');
    expect(await fleetSnapshot(gw)).toEqual(before);
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'ready', idle: 'ready' });
    expect(await gw.gateway.vca.store.outboxLength()).toBe(0);

    // The refusal is not remembered under e1: the corrected delivery is applied, not answered 404.
    const corrected = await gw.hook('contextualize', {
      eventId: 'e1',
      event: 'scale-down',
      group: 'g',
      nodes: ['idle', 'light'],
    });
    expect(corrected.status, JSON.stringify(corrected.body)).toBe(200);
    expect(corrected.body).toMatchObject({
      replayed: false,
      draining: [
        { id: 'idle', state: 'drained' },
        { id: 'light', state: 'draining' },
      ],
    });
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining' });
    // Applied results are remembered as before: the same body again is a replay.
    const replay = await gw.hook('contextualize', {
      eventId: 'e1',
      event: 'scale-down',
      group: 'g',
      nodes: ['idle', 'light'],
    });
    expect(replay.body).toMatchObject({ replayed: true, draining: corrected.body.draining });
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining' });
  });

  it('the entry at fault is named where the body first names it, among repeats and {id} references', async () => {
    gw = await startTestGateway();
    await fleetWithIdleNode(gw);
    const drain = await gw.request('operator', 'POST', '/v1/nodes/light/drain', { deadlineSeconds: 600 });
    expect(drain.body.state).toBe('draining');
    const before = await fleetSnapshot(gw);
    const refused = await gw.hook('contextualize', {
      eventId: 'e2',
      event: 'scale-down',
      group: 'g',
      nodes: ['idle', { id: 'light' }, 'idle', 'ghost-node', { id: 'heavy' }],
    });
    expectProblem(refused, 404, 'VCA_ERR_NODE_NOT_FOUND', 'nodes.3');
    // light keeps its own drain deadline; idle and heavy stay ready.
    expect(await fleetSnapshot(gw)).toEqual(before);
    expect(await nodeStates(gw)).toEqual({ heavy: 'ready', light: 'draining', idle: 'ready' });
  });

  it('a scale-up batch whose second node conflicts answers 409 naming nodes.1 and registers neither; the corrected retry registers both', async () => {
    gw = await startTestGateway();
    await fleetWithLoad(gw);
    const before = await fleetSnapshot(gw);
    const node = (id: string, host: string) => ({
      id,
      host,
      port: 5900,
      protocol: 'webrtc',
      gpus: [{ model: 'L4', count: 1 }],
    });
    const refused = await gw.hook('contextualize', {
      eventId: 'up-1',
      event: 'scale-up',
      group: 'g',
      nodes: [node('fresh', '10.0.0.5'), node('heavy', '10.9.9.9')],
    });
    expectProblem(refused, 409, 'VCA_ERR_NODE_CONFLICT', 'nodes.1');
    expect(await fleetSnapshot(gw)).toEqual(before);

    const corrected = await gw.hook('contextualize', {
      eventId: 'up-1',
      event: 'scale-up',
      group: 'g',
      nodes: [node('fresh', '10.0.0.5'), node('fresher', '10.0.0.6')],
    });
    expect(corrected.status, JSON.stringify(corrected.body)).toBe(200);
    expect(corrected.body.registered.map((entry: any) => [entry.id, entry.created])).toEqual([
      ['fresh', true],
      ['fresher', true],
    ]);
  });

  it('two scale-downs by count at once drain two different nodes', async () => {
    gw = await startTestGateway();
    await fleetWithIdleNode(gw);
    const down = (eventId: string) =>
      gw.hook('contextualize', { eventId, event: 'scale-down', group: fixtureGroup, count: 1 });
    const [first, second] = await Promise.all([down('count-1'), down('count-2')]);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    const victims = [...first.body.draining, ...second.body.draining].map((node: any) => node.id);
    expect(new Set(victims).size).toBe(2);
    expect(first.body.shortfall + second.body.shortfall).toBe(0);
  });
});
