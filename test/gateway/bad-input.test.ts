import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, fleetSnapshot, postHook } from '../support/fleet-snapshot.js';
import { idleTelemetry, PlayClient, startTestGateway, type TestGateway } from '../support/gateway.js';

type Response = { status: number; body: any; headers: Headers };

interface BadCase {
  name: string;
  send: () => Promise<Response>;
  status: number;
  code: string;
  field?: string | RegExp;
  /** Checked after the problem and the unchanged state. */
  extra?: (response: Response) => Promise<void> | void;
}

let gw: TestGateway;
let nodeToken: string;
let eventCounter = 0;

const json = { 'content-type': 'application/json' };
const validSession = { game: 'unigine-heaven', resolution: '1080p', fps: 60 };
const nodeSpec = (id: string, model = 'L4', host = '10.0.0.1') => ({
  id,
  host,
  port: 5900,
  protocol: 'webrtc',
  gpus: [{ model, count: 1 }],
});
const scaleUp = (nodes: unknown[], extra: Record<string, unknown> = {}) => ({
  eventId: `bad-${++eventCounter}`,
  event: 'scale-up',
  group: 'g',
  nodes,
  ...extra,
});
const osloScaleDown = (extra: Record<string, unknown> = {}) => ({
  message_id: `bad-oslo-${++eventCounter}`,
  event_type: 'orchestration.autoscaling.end',
  payload: { groupname: 'g', adjustment: -1, adjustment_type: 'change_in_capacity', capacity: 1 },
  ...extra,
});
const aodhDownAlarm = (extra: Record<string, unknown> = {}) => ({
  alarm_name: 'scale-down',
  alarm_id: `bad-alarm-${++eventCounter}`,
  previous: 'ok',
  current: 'alarm',
  reason: 'cpu low',
  ...extra,
});

const sessions = (body: unknown, headers?: Record<string, string>) =>
  gw.request('gamer', 'POST', '/v1/sessions', body, headers);
const telemetry = (body: unknown, headers?: Record<string, string>) =>
  gw.request({ token: nodeToken }, 'PUT', '/v1/nodes/render-1/telemetry', body, headers);
const drain = (body: unknown, headers?: Record<string, string>) =>
  gw.request('operator', 'POST', '/v1/nodes/render-1/drain', body, headers);
const contextualize = (raw: string, headers?: Record<string, string>) =>
  postHook(gw, 'contextualize', raw, headers ? { headers } : {});
const aodh = (raw: string, query = '', headers?: Record<string, string>) =>
  postHook(gw, 'aodh', raw, { query, ...(headers ? { headers } : {}) });
const notifications = (raw: string, headers?: Record<string, string>) =>
  postHook(gw, 'notifications', raw, headers ? { headers } : {});

/** Every route that takes a body, as a function of the raw text and extra headers. */
const bodyRoutes: Array<[string, (raw: string, headers?: Record<string, string>) => Promise<Response>]> = [
  ['POST /v1/sessions', (raw, headers) => sessions(raw, { ...json, ...headers })],
  ['PUT /v1/nodes/:id/telemetry', (raw, headers) => telemetry(raw, { ...json, ...headers })],
  ['POST /v1/nodes/:id/drain', (raw, headers) => drain(raw, { ...json, ...headers })],
  ['POST /v1/hooks/contextualize', (raw, headers) => contextualize(raw, headers)],
  ['POST /v1/hooks/aodh', (raw, headers) => aodh(raw, '', headers)],
  ['POST /v1/hooks/notifications', (raw, headers) => notifications(raw, headers)],
];

const hugeText = JSON.stringify({ game: 'x'.repeat(70 * 1024) });

const cases: BadCase[] = [
  // Transport: malformed JSON, wrong JSON type, huge body, wrong content type, on every body route.
  ...bodyRoutes.flatMap(([route, send]): BadCase[] => [
    {
      name: `${route}: malformed JSON`,
      send: () => send('{"game": '),
      status: 400,
      code: 'VCA_ERR_MALFORMED_JSON',
    },
    ...['[]', '"text"', 'null', '42', 'true'].map(
      (raw): BadCase => ({
        name: `${route}: JSON ${raw} instead of an object`,
        send: () => send(raw),
        status: 400,
        code: 'VCA_ERR_VALIDATION',
        field: 'body',
      }),
    ),
    {
      name: `${route}: a body over server.maxBodyBytes`,
      send: () => send(hugeText),
      status: 413,
      code: 'VCA_ERR_BODY_TOO_LARGE',
    },
    {
      name: `${route}: content-type text/plain`,
      send: () => send(JSON.stringify(validSession), { 'content-type': 'text/plain' }),
      status: 415,
      code: 'VCA_ERR_UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: `${route}: content-type application/x-www-form-urlencoded`,
      send: () => send('game=hades', { 'content-type': 'application/x-www-form-urlencoded' }),
      status: 415,
      code: 'VCA_ERR_UNSUPPORTED_MEDIA_TYPE',
    },
  ]),

  // POST /v1/sessions
  ...(
    [
      ['missing fps', { game: 'hades', resolution: '1080p' }, 'fps'],
      ['missing game', { resolution: '1080p', fps: 60 }, 'game'],
      ['missing resolution', { game: 'hades', fps: 60 }, 'resolution'],
      ['an empty object', {}, /^(game|resolution|fps)$/],
      ['fps as a string', { ...validSession, fps: '60' }, 'fps'],
      ['fps 0', { ...validSession, fps: 0 }, 'fps'],
      ['fps 1e9', { ...validSession, fps: 1e9 }, 'fps'],
      ['fps -60', { ...validSession, fps: -60 }, 'fps'],
      ['fps 59.5', { ...validSession, fps: 59.5 }, 'fps'],
      ['game as a number', { ...validSession, game: 7 }, 'game'],
      ['an empty game', { ...validSession, game: '' }, 'game'],
      ['resolution as a number', { ...validSession, resolution: 1080 }, 'resolution'],
      ['wait as a string', { ...validSession, wait: 'no' }, 'wait'],
      ['labels as an array', { ...validSession, labels: ['gpu'] }, 'labels'],
      ['an unknown field', { ...validSession, gpu: 'any' }, 'gpu'],
      ['a misspelled field', { game: 'hades', resolution: '1080p', fps: 60, regoin: 'eu-west' }, 'regoin'],
    ] as const
  ).map(
    ([label, body, field]): BadCase => ({
      name: `POST /v1/sessions: ${label}`,
      send: () => sessions(body),
      status: 400,
      code: 'VCA_ERR_VALIDATION',
      field,
    }),
  ),
  {
    name: 'POST /v1/sessions: an unknown game',
    send: () => sessions({ ...validSession, game: 'half-life-3' }),
    status: 422,
    code: 'VCA_ERR_UNKNOWN_GAME',
    field: 'game',
  },
  {
    name: 'POST /v1/sessions: a resolution that is not one',
    send: () => sessions({ ...validSession, resolution: 'huge' }),
    status: 422,
    code: 'VCA_ERR_BAD_RESOLUTION',
    field: 'resolution',
  },
  {
    name: 'POST /v1/sessions: a zero-sized resolution',
    send: () => sessions({ ...validSession, resolution: '0x0' }),
    status: 422,
    code: 'VCA_ERR_BAD_RESOLUTION',
    field: 'resolution',
  },
  {
    name: 'POST /v1/sessions: a resolution the game does not allow',
    send: () => sessions({ ...validSession, resolution: '640x480' }),
    status: 422,
    code: 'VCA_ERR_RESOLUTION_NOT_ALLOWED',
    field: 'resolution',
  },
  {
    name: 'POST /v1/sessions: a frame rate the game does not allow',
    send: () => sessions({ ...validSession, fps: 120 }),
    status: 422,
    code: 'VCA_ERR_FPS_NOT_ALLOWED',
    field: 'fps',
  },
  {
    name: 'POST /v1/sessions: an unknown GPU model constraint',
    send: () => sessions({ ...validSession, gpuModels: ['Voodoo 2'] }),
    status: 422,
    code: 'VCA_ERR_UNKNOWN_GPU_MODEL',
  },
  {
    name: 'POST /v1/sessions: an unknown priority class',
    send: () => sessions({ ...validSession, priority: 'platinum' }),
    status: 422,
    code: 'VCA_ERR_UNKNOWN_PRIORITY',
  },
  {
    name: 'POST /v1/sessions: no body at all',
    send: () => gw.request('gamer', 'POST', '/v1/sessions'),
    status: 400,
    code: 'VCA_ERR_VALIDATION',
    field: 'body',
  },

  // Routing
  {
    name: 'an unknown route',
    send: () => gw.request('gamer', 'GET', '/v1/games'),
    status: 404,
    code: 'VCA_ERR_ROUTE_NOT_FOUND',
  },
  {
    name: 'an unknown route with a body',
    send: () => gw.request('gamer', 'POST', '/v2/sessions', validSession),
    status: 404,
    code: 'VCA_ERR_ROUTE_NOT_FOUND',
  },
  {
    name: 'a malformed percent-encoding in the path',
    send: () => gw.request('gamer', 'GET', '/v1/sessions/%E0%A4%A'),
    status: 400,
    code: 'VCA_ERR_VALIDATION',
  },
  ...(
    [
      ['PUT', '/v1/sessions', 'POST'],
      ['DELETE', '/v1/nodes', 'GET'],
      ['GET', '/v1/nodes/render-1/drain', 'POST'],
      ['POST', '/v1/sessions/s-1', 'DELETE, GET'],
      ['GET', '/v1/hooks/aodh', 'POST'],
      ['POST', '/healthz', 'GET'],
    ] as const
  ).map(
    ([method, route, allow]): BadCase => ({
      name: `${method} ${route}: 405 with Allow: ${allow}`,
      send: () => gw.request('operator', method, route, method === 'GET' ? undefined : {}),
      status: 405,
      code: 'VCA_ERR_METHOD_NOT_ALLOWED',
      extra: (response) => expect(response.headers.get('allow')).toBe(allow),
    }),
  ),
  {
    name: 'GET /v1/play without an upgrade',
    send: () => gw.request('gamer', 'GET', '/v1/play'),
    status: 400,
    code: 'VCA_ERR_VALIDATION',
  },
  {
    name: 'an unknown session',
    send: () => gw.request('gamer', 'GET', '/v1/sessions/no-such-session'),
    status: 404,
    code: 'VCA_ERR_SESSION_NOT_FOUND',
  },
  {
    name: 'drain of an unknown node',
    send: () => gw.request('operator', 'POST', '/v1/nodes/render-9/drain', {}),
    status: 404,
    code: 'VCA_ERR_NODE_NOT_FOUND',
  },

  // PUT /v1/nodes/:id/telemetry
  ...(
    [
      ['utilizationGpu 101', { gpus: [{ index: 0, utilizationGpu: 101 }] }, 'gpus.0.utilizationGpu'],
      [
        'utilizationEncoder -1',
        { gpus: [{ index: 0, utilizationEncoder: -1 }] },
        'gpus.0.utilizationEncoder',
      ],
      ['utilizationMemory 1e6', { gpus: [{ index: 0, utilizationMemory: 1e6 }] }, 'gpus.0.utilizationMemory'],
      ['utilizationGpu as text', { gpus: [{ index: 0, utilizationGpu: '50 %' }] }, 'gpus.0.utilizationGpu'],
      ['temperatureGpu 1000', { gpus: [{ index: 0, temperatureGpu: 1000 }] }, 'gpus.0.temperatureGpu'],
      ['memoryUsed -5', { gpus: [{ index: 0, memoryUsed: -5 }] }, 'gpus.0.memoryUsed'],
      ['encoderSessions 1.5', { gpus: [{ index: 0, encoderSessions: 1.5 }] }, 'gpus.0.encoderSessions'],
      ['an unknown GPU field', { gpus: [{ index: 0, fanSpeed: 40 }] }, 'gpus.0.fanSpeed'],
      ['an unknown top-level field', { gpus: idleTelemetry(1), host: 'x' }, 'host'],
      ['a GPU without index', { gpus: [{ utilizationGpu: 10 }] }, 'gpus.0.index'],
      ['a negative index', { gpus: [{ index: -1 }] }, 'gpus.0.index'],
      ['no GPUs', { gpus: [] }, 'gpus'],
      ['65 GPUs', { gpus: idleTelemetry(65) }, 'gpus'],
      ['gpus as an object', { gpus: { index: 0 } }, 'gpus'],
      ['ts negative', { gpus: idleTelemetry(1), ts: -1 }, 'ts'],
    ] as const
  ).map(
    ([label, body, field]): BadCase => ({
      name: `PUT telemetry: ${label}`,
      send: () => telemetry(body),
      status: 400,
      code: 'VCA_ERR_VALIDATION',
      field,
    }),
  ),
  {
    name: 'PUT telemetry: a GPU index the node does not have',
    send: () => telemetry({ gpus: [{ index: 3, utilizationGpu: 99, temperatureGpu: 99 }] }),
    status: 422,
    code: 'VCA_ERR_GPU_NOT_FOUND',
  },
  {
    name: 'PUT telemetry: one good and one unknown GPU changes nothing',
    send: () => telemetry({ gpus: [{ index: 0, utilizationGpu: 95, temperatureGpu: 99 }, { index: 1 }] }),
    status: 422,
    code: 'VCA_ERR_GPU_NOT_FOUND',
  },

  // POST /v1/nodes/:id/drain
  ...(
    [
      ['a negative deadline', { deadlineSeconds: -1 }, 'deadlineSeconds'],
      ['a deadline as text', { deadlineSeconds: '60' }, 'deadlineSeconds'],
      ['a deadline over 7 days', { deadlineSeconds: 8 * 86_400 }, 'deadlineSeconds'],
      ['an unknown field', { deadline: 60 }, 'deadline'],
    ] as const
  ).map(
    ([label, body, field]): BadCase => ({
      name: `POST drain: ${label}`,
      send: () => drain(body),
      status: 400,
      code: 'VCA_ERR_VALIDATION',
      field,
    }),
  ),

  // POST /v1/hooks/contextualize
  ...(
    [
      ['no event', () => ({ eventId: 'x1', group: 'g', nodes: [nodeSpec('n-1')] }), 'event'],
      ['an unknown event', () => ({ ...scaleUp([nodeSpec('n-1')]), event: 'scale-sideways' }), 'event'],
      ['no group', () => ({ eventId: 'x2', event: 'scale-up', nodes: [nodeSpec('n-1')] }), 'group'],
      ['no eventId', () => ({ event: 'scale-up', group: 'g', nodes: [nodeSpec('n-1')] }), 'eventId'],
      ['no nodes', () => ({ eventId: 'x3', event: 'scale-up', group: 'g' }), 'nodes'],
      ['an empty node list', () => scaleUp([]), 'nodes'],
      ['a port as text', () => scaleUp([{ ...nodeSpec('n-1'), port: '5900' }]), 'nodes.0.port'],
      ['a port out of range', () => scaleUp([{ ...nodeSpec('n-1'), port: 70_000 }]), 'nodes.0.port'],
      [
        'a GPU count of 0',
        () => scaleUp([{ ...nodeSpec('n-1'), gpus: [{ model: 'L4', count: 0 }] }]),
        'nodes.0.gpus.0.count',
      ],
      ['an invalid IPv4 host', () => scaleUp([nodeSpec('n-1', 'L4', '999.1.1.1')]), 'nodes.0.host'],
      ['a node id with a slash', () => scaleUp([nodeSpec('n/1')]), 'nodes.0.id'],
      ['an unknown top-level field', () => scaleUp([nodeSpec('n-1')], { region: 'eu' }), 'region'],
      ['an unknown node field', () => scaleUp([{ ...nodeSpec('n-1'), gpu: 'L4' }]), /^nodes\.0/],
      ['a node listed twice', () => scaleUp([nodeSpec('n-1'), nodeSpec('n-1')]), 'nodes.1.id'],
      [
        'a scale-down with both nodes and count',
        () => ({ eventId: 'x4', event: 'scale-down', group: 'g', nodes: ['render-1'], count: 1 }),
        'count',
      ],
      [
        'a scale-down count of 0',
        () => ({ eventId: 'x5', event: 'scale-down', group: 'g', count: 0 }),
        'count',
      ],
      [
        'a scale-down count of -1',
        () => ({ eventId: 'x6', event: 'scale-down', group: 'g', count: -1 }),
        'count',
      ],
      [
        'a scale-down count as text',
        () => ({ eventId: 'x7', event: 'scale-down', group: 'g', count: '1' }),
        'count',
      ],
    ] as const
  ).map(
    ([label, body, field]): BadCase => ({
      name: `contextualize: ${label}`,
      send: () => contextualize(JSON.stringify(body())),
      status: 400,
      code: 'VCA_ERR_VALIDATION',
      field,
    }),
  ),
  {
    name: 'contextualize: an empty body',
    send: () => contextualize(''),
    status: 400,
    code: 'VCA_ERR_VALIDATION',
    field: 'body',
  },
  {
    name: 'contextualize: scale-down of an unknown node',
    send: () =>
      contextualize(
        JSON.stringify({
          eventId: `bad-${++eventCounter}`,
          event: 'scale-down',
          group: 'g',
          nodes: ['render-9'],
        }),
      ),
    status: 404,
    code: 'VCA_ERR_NODE_NOT_FOUND',
  },

  // POST /v1/hooks/aodh and /v1/hooks/notifications
  ...(
    [
      ['aodh: no alarm_id', () => aodh(JSON.stringify({ current: 'alarm', previous: 'ok' })), 'alarm_id'],
      ['aodh: alarm_id as a number', () => aodh(JSON.stringify(aodhDownAlarm({ alarm_id: 5 }))), 'alarm_id'],
      [
        'aodh: reason_data as text',
        () => aodh(JSON.stringify(aodhDownAlarm({ reason_data: 'x' }))),
        'reason_data',
      ],
      [
        'aodh: ?action=SIDEWAYS',
        () => aodh(JSON.stringify(aodhDownAlarm()), '?action=SIDEWAYS'),
        'query.action',
      ],
      [
        'aodh: ?action=UP&action=DOWN',
        () => aodh(JSON.stringify(aodhDownAlarm()), '?action=UP&action=DOWN'),
        'query.action',
      ],
      [
        'notifications: no message_id',
        () => notifications(JSON.stringify({ event_type: 'x.y', payload: {} })),
        'message_id',
      ],
      [
        'notifications: no event_type',
        () => notifications(JSON.stringify({ message_id: 'm-1', payload: {} })),
        'event_type',
      ],
      [
        'notifications: an adjustment that is not a number',
        () =>
          notifications(
            JSON.stringify(
              osloScaleDown({ payload: { adjustment: 'many', adjustment_type: 'change_in_capacity' } }),
            ),
          ),
        'payload.adjustment',
      ],
      [
        'notifications: an unknown adjustment type',
        () =>
          notifications(
            JSON.stringify(osloScaleDown({ payload: { adjustment: -1, adjustment_type: 'sideways' } })),
          ),
        'payload.adjustment_type',
      ],
      [
        'notifications: an oslo.message that is not JSON',
        () => notifications(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': '{nope' })),
        'oslo.message',
      ],
      [
        'notifications: an oslo.message holding an array',
        () => notifications(JSON.stringify({ 'oslo.message': '[1,2]' })),
        'oslo.message',
      ],
      ['notifications: an empty event batch', () => notifications('[]'), 'body'],
      [
        'notifications: a batch whose second event is bad changes nothing',
        () =>
          notifications(
            JSON.stringify([
              {
                message_id: `bad-ev-${++eventCounter}`,
                event_type: 'orchestration.autoscaling.end',
                traits: [
                  ['adjustment', 2, -1],
                  ['adjustment_type', 1, 'change_in_capacity'],
                ],
              },
              {
                message_id: `bad-ev-${++eventCounter}`,
                event_type: 'orchestration.autoscaling.end',
                traits: [['adjustment', 2, 'x']],
              },
            ]),
          ),
        /^1\.traits/,
      ],
      [
        'notifications: a trait of an unknown type',
        () =>
          notifications(JSON.stringify([{ message_id: 'm-t', event_type: 'x', traits: [['a', 9, 'b']] }])),
        /^0\.traits/,
      ],
    ] as const
  ).map(
    ([label, send, field]): BadCase => ({
      name: label,
      send,
      status: 400,
      code: 'VCA_ERR_VALIDATION',
      field,
    }),
  ),
];

beforeAll(async () => {
  gw = await startTestGateway();
  nodeToken = (await gw.registerNode('render-1', 'L4')).token;
  expect((await gw.telemetry('render-1', nodeToken, idleTelemetry(1))).status).toBe(200);
  const spare = await gw.registerNode('render-2', 'L4');
  expect((await gw.telemetry('render-2', spare.token, idleTelemetry(1))).status).toBe(200);
  // A live session, so a bad request that leaked load or ended sessions would show in the audit.
  const session = await gw.request('gamer', 'POST', '/v1/sessions', { ...validSession, wait: false });
  expect(session.status).toBe(201);
});
afterAll(async () => gw?.close());

describe('bad input: every case is a problem+json 4xx and changes nothing', () => {
  it.each(cases.map((entry) => [entry.name, entry] as const))('%s', async (_name, entry) => {
    const before = await fleetSnapshot(gw);
    const response = await entry.send();
    expectProblem(response, entry.status, entry.code, entry.field);
    expect(response.status).toBeLessThan(500);
    await entry.extra?.(response);
    expect(await fleetSnapshot(gw)).toEqual(before);
  });
});

describe('bad input: webhook events rejected when applied', () => {
  it('contextualize with an unknown GPU model: 422, nothing registered, and a resend is judged afresh (a refusal is not remembered)', async () => {
    const before = await fleetSnapshot(gw);
    const raw = JSON.stringify(scaleUp([nodeSpec('new-a', 'Voodoo 2')]));
    const first = await contextualize(raw);
    expectProblem(first, 422, 'VCA_ERR_UNKNOWN_GPU_MODEL', 'nodes.0');
    expect(first.body.replayed).toBe(false);
    const resend = await contextualize(raw);
    expectProblem(resend, 422, 'VCA_ERR_UNKNOWN_GPU_MODEL', 'nodes.0');
    expect(resend.body.replayed).toBe(false);
    expect(resend.body.detail).toBe(first.body.detail);
    expect(await fleetSnapshot(gw)).toEqual(before);
  });

  it('a batch of two nodes whose second has an unknown GPU model registers neither', async () => {
    const before = await fleetSnapshot(gw);
    const response = await contextualize(
      JSON.stringify(scaleUp([nodeSpec('new-b'), nodeSpec('new-c', 'Voodoo 2')])),
    );
    expectProblem(response, 422, 'VCA_ERR_UNKNOWN_GPU_MODEL');
    expect((await gw.request('operator', 'GET', '/v1/nodes/new-b')).status).toBe(404);
    expect((await gw.request('operator', 'GET', '/v1/nodes/new-c')).status).toBe(404);
    expect(await fleetSnapshot(gw)).toEqual(before);
  });

  it('re-registering render-1 with another host is a 409 that leaves it unchanged, also when resent', async () => {
    const before = await fleetSnapshot(gw);
    const raw = JSON.stringify(scaleUp([{ ...nodeSpec('render-1', 'L4', '10.9.9.9') }, nodeSpec('new-d')]));
    const first = await contextualize(raw);
    expectProblem(first, 409, 'VCA_ERR_NODE_CONFLICT', 'nodes.0');
    const resend = await contextualize(raw);
    expectProblem(resend, 409, 'VCA_ERR_NODE_CONFLICT', 'nodes.0');
    expect(resend.body.replayed).toBe(false);
    const node = await gw.request('operator', 'GET', '/v1/nodes/render-1');
    expect(node.body.host).toBe('127.0.0.1');
    expect((await gw.request('operator', 'GET', '/v1/nodes/new-d')).status).toBe(404);
    expect(await fleetSnapshot(gw)).toEqual(before);
  });

  it('re-registering render-1 with the same definition is accepted and changes nothing', async () => {
    const before = await fleetSnapshot(gw);
    const response = await contextualize(
      JSON.stringify(scaleUp([{ ...nodeSpec('render-1', 'L4', '127.0.0.1') }])),
    );
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body.registered).toMatchObject([{ id: 'render-1', created: false }]);
    expect(await fleetSnapshot(gw)).toEqual(before);
  });

  it('an unsigned or wrongly signed body is refused before its content is looked at', async () => {
    const response = await gw.request('none', 'POST', '/v1/hooks/contextualize', '{"nope', {
      ...json,
      'x-vca-signature': `t=${Math.floor(gw.clock.now() / 1000)},v1=${'a'.repeat(64)}`,
    });
    expectProblem(response, 401, 'VCA_ERR_SIGNATURE');
  });
});

describe('bad input: WebSocket /v1/play', () => {
  it('answers a binary frame, malformed JSON and bad messages with error messages and keeps the socket open', async () => {
    const before = await fleetSnapshot(gw);
    const client = await PlayClient.connect(gw.wsUrl);
    try {
      client.socket.send(Buffer.from(JSON.stringify({ type: 'request', ...validSession })), { binary: true });
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_MALFORMED_JSON' });
      client.socket.send('{"type": "request", ');
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_MALFORMED_JSON' });
      client.send({ type: 'dance' });
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_VALIDATION', field: 'type' });
      client.send(['request']);
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_VALIDATION' });
      client.send({ type: 'request', ...validSession, fps: '60' });
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_VALIDATION', field: 'fps' });
      client.send({ type: 'request', ...validSession, game: 'half-life-3' });
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_UNKNOWN_GAME' });
      client.send({ type: 'request', ...validSession, extra: 1 });
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_VALIDATION', field: 'extra' });
      client.send({ type: 'end' });
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_SESSION_NOT_FOUND' });
      client.send({ type: 'resume', sessionId: 's-1', resumeToken: 'forged' });
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_UNAUTHORIZED' });
      expect(client.closedWith).toBeNull();
      expect(await fleetSnapshot(gw)).toEqual(before);
    } finally {
      await client.close();
    }
  });

  it('closes the socket on a message over server.maxWsPayloadBytes (16 KiB)', async () => {
    const before = await fleetSnapshot(gw);
    const client = await PlayClient.connect(gw.wsUrl);
    const closed = new Promise<number>((resolve) => client.socket.once('close', (code) => resolve(code)));
    client.send({ type: 'request', ...validSession, padding: 'x'.repeat(17 * 1024) });
    const code = await closed;
    expect(code).not.toBe(1000);
    expect(await fleetSnapshot(gw)).toEqual(before);
    // The server still accepts new sockets.
    const next = await PlayClient.connect(gw.wsUrl);
    await next.close();
  });

  it('a message just under the limit is parsed (and rejected for its content only)', async () => {
    const client = await PlayClient.connect(gw.wsUrl);
    try {
      client.send({ type: 'request', ...validSession, padding: 'x'.repeat(15 * 1024) });
      expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_VALIDATION', field: 'padding' });
    } finally {
      await client.close();
    }
  });
});

describe('bad input: afterwards', () => {
  it('the gateway still serves, with the token accepted and the node in place', async () => {
    const health = await gw.request('none', 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect((await gw.request('none', 'GET', '/readyz')).status).toBe(200);
    const node = await gw.request('operator', 'GET', '/v1/nodes/render-1');
    expect(node.body).toMatchObject({ state: 'ready', sessions: 1 });
    const metrics = await gw.request('operator', 'GET', '/metrics');
    expect(metrics.body).toMatch(/vca_http_errors_total\{code="VCA_ERR_VALIDATION"\} \d+/);
  });
});
