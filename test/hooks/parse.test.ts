/** Specifications of the orchestrator-webhook parsers, driven by the real-world fixtures (test/fixtures). */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VcaError } from '../../src/errors.js';
import {
  type OrchestrationEvent,
  parseAodhAlarm,
  parseContextualize,
  parseNotifications,
} from '../../src/hooks/index.js';

const fixturesDirectory = path.resolve(import.meta.dirname, '../fixtures/webhooks');

/** A fresh copy on every call, so a test that edits a body cannot leak into another. */
function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(fixturesDirectory, name), 'utf8'));
}

function fixtureArray(name: string): Record<string, unknown>[] {
  return JSON.parse(readFileSync(path.join(fixturesDirectory, name), 'utf8'));
}

const noQuery = new URLSearchParams();

function validationErrorOf(parse: () => unknown): VcaError {
  let thrown: unknown;
  try {
    parse();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(VcaError);
  const error = thrown as VcaError;
  expect(error.code).toBe('VCA_ERR_VALIDATION');
  expect(error.status).toBe(400);
  expect(typeof error.extra?.field).toBe('string');
  return error;
}

function expectRejected(parse: () => unknown, field: string): void {
  const error = validationErrorOf(parse);
  expect(error.extra?.field).toBe(field);
  expect(error.message).toContain(field);
}

function only(events: OrchestrationEvent[]): OrchestrationEvent {
  expect(events).toHaveLength(1);
  return events[0]!;
}

function autoscalingNotification(payload: Record<string, unknown>, overrides: Record<string, unknown> = {}) {
  return {
    message_id: 'msg-1',
    event_type: 'orchestration.autoscaling.end',
    publisher_id: 'orchestration.render-ctl-1',
    payload: { groupname: 'rrvc-ASGroup-a', user_id: 'admin', ...payload },
    ...overrides,
  };
}

function autoscalingEvent(traits: unknown[], overrides: Record<string, unknown> = {}) {
  return {
    message_id: 'event-1',
    event_type: 'orchestration.autoscaling.end',
    generated: '2026-11-20T12:00:00.000001',
    traits: [['groupname', 1, 'rrvc-ASGroup-a'], ...traits],
    ...overrides,
  };
}

function thresholdAlarm(overrides: Record<string, unknown> = {}) {
  return { ...fixture('aodh-threshold-alarm-gpu-temperature.json'), ...overrides };
}

describe('hooks: fixtures', () => {
  it('finds every webhook fixture the specifications below rely on', () => {
    expect(readdirSync(fixturesDirectory).sort()).toEqual([
      'aodh-event-alarm-autoscaling-end.json',
      'aodh-threshold-alarm-gpu-temperature.json',
      'ceilometer-2014-notification-alarm.json',
      'ceilometer-http-publisher-events.json',
      'contextualize-scale-down-count.json',
      'contextualize-scale-up.json',
      'oslo-notification-autoscaling-end-scale-down.json',
    ]);
  });
});

describe('hooks: contextualization', () => {
  it('registers the nodes of a scale-up with their GPUs and labels', () => {
    const event = parseContextualize(fixture('contextualize-scale-up.json'));
    expect(event).toMatchObject({
      idempotencyKey: 'contextualize:ctx-2026-11-20T12:03:42Z-rrvc-up-1',
      source: 'contextualize',
      eventType: 'scale-up',
      group: 'rrvc-ASGroup-nyywzf4x5hif',
    });
    expect(event.action).toEqual({
      kind: 'register-nodes',
      nodes: [
        {
          id: 'render-7',
          host: '10.20.0.17',
          port: 5901,
          protocol: 'turbovnc',
          gpus: [{ model: 'GRID K2', count: 2 }],
          labels: { region: 'eu-west', zone: 'eu-west-1a' },
        },
      ],
    });
    expect(event.summary).toContain('render-7');
  });

  it('copies the registrations instead of aliasing the request body', () => {
    const body = fixture('contextualize-scale-up.json');
    const event = parseContextualize(body);
    (body.nodes as { port: number }[])[0]!.port = 1;
    expect(event.action.kind === 'register-nodes' && event.action.nodes[0]!.port).toBe(5901);
  });

  it('accepts host names and IPv6 literals as well as IPv4 addresses', () => {
    const body = fixture('contextualize-scale-up.json');
    const [node] = body.nodes as Record<string, unknown>[];
    for (const host of ['render-7.eu-west.example.org', 'fd00::17', 'render7']) {
      const event = parseContextualize({ ...body, nodes: [{ ...node, host }] });
      expect(event.action.kind === 'register-nodes' && event.action.nodes[0]!.host).toBe(host);
    }
  });

  it('keeps the Heat membership a registration carries, and none when it carries none', () => {
    const body = fixture('contextualize-scale-up.json');
    const [node] = body.nodes as Record<string, unknown>[];
    const orchestrator = {
      kind: 'heat',
      stackId: '8a1f0c52-9b0e-4b7a-a2d4-5a7d0c3e1f10',
      group: 'vca-asg',
      member: 'x3kq7mbu4f2c',
      serverId: 'f0e1d2c3-b4a5-4697-8877-665544332211',
      createdAt: '2026-11-19T10:35:59Z',
      failed: false,
    };
    const event = parseContextualize({ ...body, nodes: [{ ...node, orchestrator }] });
    expect(event.action.kind === 'register-nodes' && event.action.nodes[0]!.orchestrator).toEqual(
      orchestrator,
    );
    const { serverId: _serverId, failed: _failed, ...required } = orchestrator;
    const bare = parseContextualize({ ...body, nodes: [{ ...node, orchestrator: required }] });
    expect(bare.action.kind === 'register-nodes' && bare.action.nodes[0]!.orchestrator).toEqual(required);
    const none = parseContextualize(body);
    expect(none.action.kind === 'register-nodes' && 'orchestrator' in none.action.nodes[0]!).toBe(false);
  });

  it('drains a count of nodes on a scale-down by count', () => {
    const event = parseContextualize(fixture('contextualize-scale-down-count.json'));
    expect(event).toMatchObject({
      source: 'contextualize',
      eventType: 'scale-down',
      group: 'rrvc-ASGroup-nyywzf4x5hif',
      action: { kind: 'drain-count', count: 1 },
    });
  });

  it('drains named nodes on a scale-down, taking ids and {id} objects alike, each once', () => {
    const event = parseContextualize({
      eventId: 'down-2',
      event: 'scale-down',
      group: 'g',
      nodes: ['render-7', { id: 'render-8' }, 'render-7', { id: 'render-9', host: '10.0.0.9' }],
    });
    expect(event.action).toEqual({
      kind: 'drain-nodes',
      nodeIds: ['render-7', 'render-8', 'render-9'],
      // Where each node is first named, for the field of a refusal.
      fields: ['nodes.0', 'nodes.1', 'nodes.3'],
    });
  });
});

describe('hooks: oslo notifications', () => {
  it('acts on the end of a change_in_capacity scale-down of a named group (its members leave)', () => {
    const event = only(parseNotifications(fixture('oslo-notification-autoscaling-end-scale-down.json')));
    expect(event).toMatchObject({
      idempotencyKey: 'notification:c1f0e9a2-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
      source: 'oslo-notification',
      eventType: 'orchestration.autoscaling.end',
      group: 'rrvc-ASGroup-nyywzf4x5hif',
      action: { kind: 'heat-resize', phase: 'end' },
    });
    expect(event.capacity).toEqual({ after: 4, adjustment: -1, adjustmentType: 'change_in_capacity' });
  });

  it('reads the notification inside an oslo v2 envelope exactly as the raw one', () => {
    const raw = fixture('oslo-notification-autoscaling-end-scale-down.json');
    const wrapped = { 'oslo.version': '2.0', 'oslo.message': JSON.stringify(raw) };
    expect(parseNotifications(wrapped)).toEqual(parseNotifications(raw));
  });

  it('rejects an envelope whose oslo.message is not a serialized object', () => {
    expectRejected(
      () => parseNotifications({ 'oslo.version': '2.0', 'oslo.message': '{"event_type": ' }),
      'oslo.message',
    );
    expectRejected(
      () => parseNotifications({ 'oslo.version': '2.0', 'oslo.message': '[1, 2]' }),
      'oslo.message',
    );
    expectRejected(() => parseNotifications({ 'oslo.message': 42 }), 'oslo.message');
    expectRejected(
      () => parseNotifications({ 'oslo.message': JSON.stringify({ message_id: 'm' }) }),
      'oslo.message.event_type',
    );
  });

  it('records the start of a resize, where capacity is the size before it', () => {
    const event = only(
      parseNotifications(
        autoscalingNotification(
          { capacity: 3, adjustment: 1, adjustment_type: 'change_in_capacity' },
          { event_type: 'orchestration.autoscaling.start' },
        ),
      ),
    );
    expect(event.action).toEqual({ kind: 'record' });
    expect(event.capacity).toEqual({ before: 3, adjustment: 1, adjustmentType: 'change_in_capacity' });
  });

  it('acts on the start of a shrinking resize of a named group, in every adjustment type', () => {
    for (const [adjustment, type] of [
      [-1, 'change_in_capacity'],
      [-1, 'ChangeInCapacity'],
      [2, 'exact_capacity'],
      [2, 'ExactCapacity'],
      [-50, 'percent_change_in_capacity'],
      [-50, 'PercentChangeInCapacity'],
    ] as const) {
      const event = only(
        parseNotifications(
          autoscalingNotification(
            { capacity: 4, adjustment, adjustment_type: type },
            { event_type: 'orchestration.autoscaling.start' },
          ),
        ),
      );
      expect(event.action, type).toEqual({ kind: 'heat-resize', phase: 'start' });
      expect(event.capacity?.before).toBe(4);
    }
  });

  it('changes nothing for a resize that names no group: a count could not be kept to its group', () => {
    const event = only(
      parseNotifications(
        autoscalingNotification({
          groupname: null,
          capacity: 3,
          adjustment: -1,
          adjustment_type: 'change_in_capacity',
        }),
      ),
    );
    expect(event.action).toEqual({ kind: 'record' });
    expect(event.summary).toContain('names no group');
  });

  it('records the end of a scale-up and says the new nodes register through the contextualization hook', () => {
    const event = only(
      parseNotifications(
        autoscalingNotification({ capacity: 6, adjustment: 2, adjustment_type: 'ChangeInCapacity' }),
      ),
    );
    expect(event.action).toEqual({ kind: 'record' });
    expect(event.capacity).toEqual({ after: 6, adjustment: 2, adjustmentType: 'change_in_capacity' });
    expect(event.summary).toContain('contextualization hook');
  });

  it('acts on a failed resize with the size Heat re-read (members it removed before failing leave)', () => {
    const event = only(
      parseNotifications(
        autoscalingNotification(
          { capacity: 4, adjustment: -1, adjustment_type: 'change_in_capacity', message: 'Quota exceeded' },
          { event_type: 'orchestration.autoscaling.error' },
        ),
      ),
    );
    expect(event.action).toEqual({ kind: 'heat-resize', phase: 'error' });
    expect(event.capacity).toMatchObject({ after: 4 });
    expect(event.summary).toContain('Quota exceeded');
  });

  it('normalizes ExactCapacity; its end is acted on (the size before comes from the start or the group)', () => {
    const event = only(
      parseNotifications(
        autoscalingNotification({ capacity: 2, adjustment: 2, adjustment_type: 'ExactCapacity' }),
      ),
    );
    expect(event.action).toEqual({ kind: 'heat-resize', phase: 'end' });
    expect(event.capacity).toEqual({ after: 2, adjustment: 2, adjustmentType: 'exact_capacity' });
  });

  it('normalizes PercentChangeInCapacity and takes a fractional percentage', () => {
    const event = only(
      parseNotifications(
        autoscalingNotification({
          capacity: 9,
          adjustment: -12.5,
          adjustment_type: 'PercentChangeInCapacity',
        }),
      ),
    );
    expect(event.action).toEqual({ kind: 'heat-resize', phase: 'end' });
    expect(event.capacity).toEqual({
      after: 9,
      adjustment: -12.5,
      adjustmentType: 'percent_change_in_capacity',
    });
  });

  it('coerces integers that arrive as strings', () => {
    const event = only(
      parseNotifications(
        autoscalingNotification({ capacity: '4', adjustment: ' -2 ', adjustment_type: 'change_in_capacity' }),
      ),
    );
    expect(event.action).toEqual({ kind: 'heat-resize', phase: 'end' });
    expect(event.capacity).toEqual({ after: 4, adjustment: -2, adjustmentType: 'change_in_capacity' });
  });

  it.each([
    ['a capacity that is not a number', { capacity: 'four' }, 'payload.capacity'],
    ['a negative capacity', { capacity: -1 }, 'payload.capacity'],
    ['a fractional capacity', { capacity: 4.5 }, 'payload.capacity'],
    ['an adjustment in scientific notation', { adjustment: '1e3' }, 'payload.adjustment'],
    ['a fractional whole-node adjustment', { adjustment: -1.5 }, 'payload.adjustment'],
    ['a boolean adjustment', { adjustment: true }, 'payload.adjustment'],
    ['an unknown adjustment type', { adjustment_type: 'Sideways' }, 'payload.adjustment_type'],
    ['a group name that is not a string', { groupname: 7 }, 'payload.groupname'],
  ])('rejects %s in a Heat autoscaling payload', (_, garbage, field) => {
    const payload = { capacity: 4, adjustment: -1, adjustment_type: 'change_in_capacity', ...garbage };
    expectRejected(() => parseNotifications(autoscalingNotification(payload)), field);
  });

  it('never takes payload.user_id (a user name) for anything', () => {
    const event = only(parseNotifications(fixture('oslo-notification-autoscaling-end-scale-down.json')));
    expect(JSON.stringify(event)).not.toContain('admin');
  });

  it('records event types it does not act on instead of rejecting them', () => {
    const event = only(
      parseNotifications({
        message_id: 'm-9',
        event_type: 'compute.instance.create.end',
        payload: { host: 'x' },
      }),
    );
    expect(event).toMatchObject({ eventType: 'compute.instance.create.end', action: { kind: 'record' } });
    expect(event.group).toBeUndefined();
  });
});

describe('hooks: Ceilometer events', () => {
  it('turns an HTTP-publisher batch into one recorded event per element', () => {
    const [start, end, ...rest] = parseNotifications(fixtureArray('ceilometer-http-publisher-events.json'));
    expect(rest).toEqual([]);
    expect(start).toMatchObject({
      idempotencyKey: 'notification:7e2b9c11-0f3a-4d5e-9b8c-1a2b3c4d5e6f',
      source: 'ceilometer-event',
      eventType: 'orchestration.autoscaling.start',
      group: 'rrvc-ASGroup-nyywzf4x5hif',
      action: { kind: 'record' },
      capacity: { before: 4, adjustment: 1, adjustmentType: 'change_in_capacity' },
    });
    expect(end).toMatchObject({
      eventType: 'orchestration.autoscaling.end',
      action: { kind: 'record' },
      capacity: { after: 5, adjustment: 1, adjustmentType: 'change_in_capacity' },
    });
  });

  it('accepts a single event object', () => {
    const event = only(
      parseNotifications(
        autoscalingEvent([
          ['capacity', 2, 3],
          ['adjustment', 2, -2],
          ['adjustment_type', 1, 'change_in_capacity'],
        ]),
      ),
    );
    expect(event).toMatchObject({
      source: 'ceilometer-event',
      action: { kind: 'heat-resize', phase: 'end' },
    });
  });

  it('coerces integer traits sent as strings and reads traits spelled as objects', () => {
    const event = only(
      parseNotifications(
        autoscalingEvent([
          ['capacity', 2, '3'],
          { name: 'adjustment', type: 'integer', value: '-1' },
          { name: 'adjustment_type', type: 'string', value: 'ChangeInCapacity' },
        ]),
      ),
    );
    expect(event.capacity).toEqual({ after: 3, adjustment: -1, adjustmentType: 'change_in_capacity' });
    expect(event.action).toEqual({ kind: 'heat-resize', phase: 'end' });
  });

  it.each([
    ['an integer trait holding words', [['capacity', 2, 'five']], 'traits.1'],
    ['a float trait holding words', [['load', 3, 'high']], 'traits.1'],
    ['a trait of unknown type', [['capacity', 9, 5]], 'traits.1'],
    ['a trait that is not a triple', [['capacity', 2]], 'traits.1'],
    ['a trait with a non-string name', [[5, 1, 'x']], 'traits.1'],
  ])('rejects %s', (_, traits, field) => {
    expectRejected(() => parseNotifications(autoscalingEvent(traits)), field);
  });

  it('names the element of a batch that is wrong', () => {
    const batch = fixtureArray('ceilometer-http-publisher-events.json');
    delete batch[1]!.message_id;
    expectRejected(() => parseNotifications(batch), '1.message_id');
  });
});

describe('hooks: aodh alarms', () => {
  it('records an event alarm on a Heat scale-up end with the new size and the adjustment', () => {
    const event = parseAodhAlarm(fixture('aodh-event-alarm-autoscaling-end.json'), noQuery);
    expect(event).toMatchObject({
      source: 'aodh',
      eventType: 'orchestration.autoscaling.end',
      group: 'rrvc-ASGroup-nyywzf4x5hif',
      action: { kind: 'record' },
      alarm: {
        id: '0b6b2f0e-5d0c-4c7e-9f0a-6a1d2d0f6c11',
        name: 'render-nodes-scaled-up',
        previous: 'insufficient data',
        current: 'alarm',
        severity: 'low',
      },
    });
    expect(event.capacity).toEqual({ after: 5, adjustment: 2, adjustmentType: 'change_in_capacity' });
  });

  it('records a threshold alarm when its URL carries no direction', () => {
    const event = parseAodhAlarm(fixture('aodh-threshold-alarm-gpu-temperature.json'), noQuery);
    expect(event).toMatchObject({
      source: 'aodh',
      eventType: 'alarm.threshold',
      action: { kind: 'record' },
      alarm: {
        id: '9a3e2d41-77c1-4c0e-8a52-1f2b3c4d5e6f',
        name: 'rrvc-gpu-temperature-high',
        severity: 'moderate',
      },
    });
    expect(event.capacity).toBeUndefined();
    expect(event.summary).toContain('most recent: 84.0');
  });

  it('treats the 2014 notification alarm as a recorded scale-up start', () => {
    const event = parseAodhAlarm(
      fixture('ceilometer-2014-notification-alarm.json'),
      new URLSearchParams('action=UP'),
    );
    expect(event).toMatchObject({
      idempotencyKey: 'notification:738be905-1ec3-47e3-811a-ab7975426567',
      source: 'aodh',
      eventType: 'orchestration.autoscaling.start',
      group: 'AS4-ASGroup-nyywzf4x5hif',
      action: { kind: 'record' },
      alarm: { id: 'e7dafd2d-18a3-4c9d-a4af-efe927007ae6', previous: 'insufficient data', current: 'alarm' },
    });
    expect(event.capacity).toEqual({ before: 1, adjustment: 1, adjustmentType: 'change_in_capacity' });
  });

  it.each(['DOWN', 'down', 'Down'])('drains one node when a firing alarm URL says action=%s', (direction) => {
    const event = parseAodhAlarm(thresholdAlarm(), new URLSearchParams({ action: direction }));
    expect(event.action).toEqual({ kind: 'drain-count', count: 1 });
  });

  it('records a firing alarm whose URL says action=UP, since new nodes register themselves', () => {
    const event = parseAodhAlarm(thresholdAlarm(), new URLSearchParams('action=up'));
    expect(event.action).toEqual({ kind: 'record' });
    expect(event.summary).toContain('contextualization hook');
  });

  it.each([
    ['alarm', 'ok'],
    ['alarm', 'insufficient data'],
    ['ok', 'insufficient data'],
    ['insufficient data', 'ok'],
  ])('records the %s -> %s transition even with action=DOWN', (previous, current) => {
    const event = parseAodhAlarm(thresholdAlarm({ previous, current }), new URLSearchParams('action=DOWN'));
    expect(event.action).toEqual({ kind: 'record' });
  });

  it('lets a Heat autoscaling event decide, whatever direction the URL names', () => {
    const body = fixture('aodh-event-alarm-autoscaling-end.json');
    const reasonData = body.reason_data as { event: { traits: unknown[][] } };
    reasonData.event.traits = reasonData.event.traits.map((trait) =>
      trait[0] === 'adjustment' ? ['adjustment', 2, -3] : trait,
    );
    expect(parseAodhAlarm(body, new URLSearchParams('action=UP')).action).toEqual({
      kind: 'heat-resize',
      phase: 'end',
    });
    const grown = parseAodhAlarm(
      fixture('aodh-event-alarm-autoscaling-end.json'),
      new URLSearchParams('action=DOWN'),
    );
    expect(grown.action).toEqual({ kind: 'record' });
  });

  it('drains one node for a firing event alarm on another event type when the URL says DOWN', () => {
    const body = fixture('aodh-event-alarm-autoscaling-end.json');
    body.reason_data = {
      type: 'event',
      event: { message_id: 'e-2', event_type: 'compute.instance.delete.end', traits: [] },
    };
    const event = parseAodhAlarm(body, new URLSearchParams('action=DOWN'));
    expect(event).toMatchObject({
      eventType: 'compute.instance.delete.end',
      action: { kind: 'drain-count', count: 1 },
    });
  });

  it('names gnocchi and other alarm kinds after their reason_data type', () => {
    const event = parseAodhAlarm(
      thresholdAlarm({ reason_data: { type: 'gnocchi_aggregation_by_metric_threshold', count: 1 } }),
      noQuery,
    );
    expect(event).toMatchObject({
      eventType: 'alarm.gnocchi_aggregation_by_metric_threshold',
      action: { kind: 'record' },
    });
    const bare = thresholdAlarm();
    delete bare.reason_data;
    expect(parseAodhAlarm(bare, noQuery).eventType).toBe('alarm');
  });

  it('keeps the summary on one line when the reason tries to forge log lines', () => {
    const event = parseAodhAlarm(
      thresholdAlarm({ reason: 'hot\n{"level":60,"msg":"forged"}\r\u2028' }),
      noQuery,
    );
    expect(event.summary).not.toMatch(/[\n\r\u2028]/);
  });

  it('accepts fields it does not know in a foreign body', () => {
    const event = parseAodhAlarm(
      thresholdAlarm({ alarm_type: 'threshold', new_field_in_2030: { x: 1 } }),
      noQuery,
    );
    expect(event.action).toEqual({ kind: 'record' });
  });

  it.each([['SIDEWAYS'], [''], ['scale-down']])('rejects action=%s in the alarm URL', (direction) => {
    expectRejected(
      () => parseAodhAlarm(thresholdAlarm(), new URLSearchParams({ action: direction })),
      'query.action',
    );
  });

  it('rejects an alarm URL that names both directions', () => {
    expectRejected(
      () => parseAodhAlarm(thresholdAlarm(), new URLSearchParams('action=UP&action=DOWN')),
      'query.action',
    );
  });
});

describe('hooks: replay keys', () => {
  it('gives every fixture the same key when the same delivery is replayed', () => {
    const pairs: [OrchestrationEvent[], OrchestrationEvent[]][] = [
      [
        [parseContextualize(fixture('contextualize-scale-up.json'))],
        [parseContextualize(fixture('contextualize-scale-up.json'))],
      ],
      [
        [parseContextualize(fixture('contextualize-scale-down-count.json'))],
        [parseContextualize(fixture('contextualize-scale-down-count.json'))],
      ],
      [
        parseNotifications(fixture('oslo-notification-autoscaling-end-scale-down.json')),
        parseNotifications(fixture('oslo-notification-autoscaling-end-scale-down.json')),
      ],
      [
        parseNotifications(fixtureArray('ceilometer-http-publisher-events.json')),
        parseNotifications(fixtureArray('ceilometer-http-publisher-events.json')),
      ],
      ...[
        'aodh-event-alarm-autoscaling-end.json',
        'aodh-threshold-alarm-gpu-temperature.json',
        'ceilometer-2014-notification-alarm.json',
      ].map((name): [OrchestrationEvent[], OrchestrationEvent[]] => [
        [parseAodhAlarm(fixture(name), noQuery)],
        [parseAodhAlarm(fixture(name), noQuery)],
      ]),
    ];
    for (const [first, replay] of pairs) {
      expect(replay.map((event) => event.idempotencyKey)).toEqual(first.map((event) => event.idempotencyKey));
    }
  });

  it('gives different deliveries different keys', () => {
    const keys = [
      parseContextualize(fixture('contextualize-scale-up.json')).idempotencyKey,
      parseContextualize({ ...fixture('contextualize-scale-up.json'), eventId: 'ctx-other' }).idempotencyKey,
      parseContextualize(fixture('contextualize-scale-down-count.json')).idempotencyKey,
      only(parseNotifications(fixture('oslo-notification-autoscaling-end-scale-down.json'))).idempotencyKey,
      only(
        parseNotifications({
          ...fixture('oslo-notification-autoscaling-end-scale-down.json'),
          message_id: 'other',
        }),
      ).idempotencyKey,
      ...parseNotifications(fixtureArray('ceilometer-http-publisher-events.json')).map(
        (event) => event.idempotencyKey,
      ),
      parseAodhAlarm(fixture('aodh-event-alarm-autoscaling-end.json'), noQuery).idempotencyKey,
      parseAodhAlarm(thresholdAlarm(), noQuery).idempotencyKey,
      parseAodhAlarm(
        thresholdAlarm({
          reason: 'Transition to alarm due to 3 samples outside threshold, most recent: 91.0',
        }),
        noQuery,
      ).idempotencyKey,
      parseAodhAlarm(thresholdAlarm({ previous: 'alarm' }), noQuery).idempotencyKey,
      parseAodhAlarm(thresholdAlarm({ alarm_id: 'another-alarm' }), noQuery).idempotencyKey,
      parseAodhAlarm(fixture('ceilometer-2014-notification-alarm.json'), noQuery).idempotencyKey,
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('gives one Heat notification one key on every route it can arrive by', () => {
    const notification = autoscalingNotification(
      { capacity: 4, adjustment: -1, adjustment_type: 'change_in_capacity' },
      { message_id: 'heat-msg-1' },
    );
    const asEvent = autoscalingEvent(
      [
        ['capacity', 2, 4],
        ['adjustment', 2, -1],
        ['adjustment_type', 1, 'change_in_capacity'],
      ],
      { message_id: 'heat-msg-1' },
    );
    const asEventAlarm = { ...thresholdAlarm(), reason_data: { type: 'event', event: asEvent } };
    const asLegacyAlarm = { ...thresholdAlarm(), reason_data: notification };
    const events = [
      only(parseNotifications(notification)),
      only(parseNotifications({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify(notification) })),
      only(parseNotifications(asEvent)),
      parseAodhAlarm(asEventAlarm, noQuery),
      parseAodhAlarm(asLegacyAlarm, new URLSearchParams('action=DOWN')),
    ];
    expect(new Set(events.map((event) => event.idempotencyKey))).toEqual(
      new Set(['notification:heat-msg-1']),
    );
    for (const event of events) expect(event.action).toEqual({ kind: 'heat-resize', phase: 'end' });
  });
});

describe('hooks: rejecting bad input', () => {
  const scaleUp = () => fixture('contextualize-scale-up.json');
  const membership = () => ({
    kind: 'heat',
    stackId: '8a1f0c52-9b0e-4b7a-a2d4-5a7d0c3e1f10',
    group: 'vca-asg',
    member: 'x3kq7mbu4f2c',
    createdAt: '2026-11-19T10:35:59Z',
  });
  const withNode = (node: Record<string, unknown>) => {
    const body = scaleUp();
    const [first] = body.nodes as Record<string, unknown>[];
    return { ...body, nodes: [{ ...first, ...node }] };
  };

  it.each<[string, unknown, string]>([
    ['null', null, 'body'],
    ['a string', 'scale-up', 'body'],
    ['a number', 42, 'body'],
    ['an array', [fixture('contextualize-scale-up.json')], 'body'],
    ['an object without event', { eventId: 'e', group: 'g', count: 1 }, 'event'],
    ['an unknown event', { eventId: 'e', event: 'scale-sideways', group: 'g', count: 1 }, 'event'],
    ['a missing eventId', { event: 'scale-down', group: 'g', count: 1 }, 'eventId'],
    ['an empty eventId', { eventId: '', event: 'scale-down', group: 'g', count: 1 }, 'eventId'],
    [
      'an eventId over 200 characters',
      { eventId: 'e'.repeat(201), event: 'scale-down', group: 'g', count: 1 },
      'eventId',
    ],
    ['a numeric group', { eventId: 'e', event: 'scale-down', group: 5, count: 1 }, 'group'],
    [
      'an unknown top-level field',
      { ...fixture('contextualize-scale-up.json'), priority: 'high' },
      'priority',
    ],
    ['a scale-up without nodes', { eventId: 'e', event: 'scale-up', group: 'g' }, 'nodes'],
    ['a scale-up with no nodes', { eventId: 'e', event: 'scale-up', group: 'g', nodes: [] }, 'nodes'],
    [
      'both nodes and count',
      { eventId: 'e', event: 'scale-down', group: 'g', nodes: ['render-7'], count: 1 },
      'count',
    ],
    ['neither nodes nor count', { eventId: 'e', event: 'scale-down', group: 'g' }, 'nodes'],
    ['a zero count', { eventId: 'e', event: 'scale-down', group: 'g', count: 0 }, 'count'],
    ['a fractional count', { eventId: 'e', event: 'scale-down', group: 'g', count: 1.5 }, 'count'],
    ['a count as a string', { eventId: 'e', event: 'scale-down', group: 'g', count: '1' }, 'count'],
    ['a drain list of junk', { eventId: 'e', event: 'scale-down', group: 'g', nodes: [1, null] }, 'nodes.0'],
    [
      'a bad node id to drain',
      { eventId: 'e', event: 'scale-down', group: 'g', nodes: ['-render'] },
      'nodes.0',
    ],
    ['a node id starting with a dash', withNode({ id: '-render-7' }), 'nodes.0.id'],
    ['membership that is not an object', withNode({ orchestrator: 'heat' }), 'nodes.0.orchestrator'],
    [
      'membership of another orchestrator kind',
      withNode({ orchestrator: { ...membership(), kind: 'senlin' } }),
      'nodes.0.orchestrator.kind',
    ],
    [
      'membership without a member name',
      withNode({ orchestrator: { ...membership(), member: undefined } }),
      'nodes.0.orchestrator.member',
    ],
    [
      'membership with an empty stack id',
      withNode({ orchestrator: { ...membership(), stackId: '' } }),
      'nodes.0.orchestrator.stackId',
    ],
    [
      'a group name over 255 characters',
      withNode({ orchestrator: { ...membership(), group: 'g'.repeat(256) } }),
      'nodes.0.orchestrator.group',
    ],
    [
      'a member name with a control character',
      withNode({ orchestrator: { ...membership(), member: 'abc\ndef' } }),
      'nodes.0.orchestrator.member',
    ],
    [
      'a creation time that is no ISO 8601 text',
      withNode({ orchestrator: { ...membership(), createdAt: 'yesterday' } }),
      'nodes.0.orchestrator.createdAt',
    ],
    [
      'a creation time on 31 February',
      withNode({ orchestrator: { ...membership(), createdAt: '2026-02-31T10:00:00Z' } }),
      'nodes.0.orchestrator.createdAt',
    ],
    [
      'a creation time at hour 25',
      withNode({ orchestrator: { ...membership(), createdAt: '2026-11-19T25:00:00Z' } }),
      'nodes.0.orchestrator.createdAt',
    ],
    [
      'failed as a string',
      withNode({ orchestrator: { ...membership(), failed: 'yes' } }),
      'nodes.0.orchestrator.failed',
    ],
    [
      'an unknown membership field',
      withNode({ orchestrator: { ...membership(), minSize: 1 } }),
      'nodes.0.orchestrator.minSize',
    ],
    ['a node id with a space', withNode({ id: 'render 7' }), 'nodes.0.id'],
    ['a node id over 63 characters', withNode({ id: `r${'x'.repeat(63)}` }), 'nodes.0.id'],
    ['port 0', withNode({ port: 0 }), 'nodes.0.port'],
    ['port 70000', withNode({ port: 70000 }), 'nodes.0.port'],
    ['a port as a string', withNode({ port: '5901' }), 'nodes.0.port'],
    ['a host that is no address', withNode({ host: 'render 7!' }), 'nodes.0.host'],
    ['an IPv4 address out of range', withNode({ host: '10.20.0.300' }), 'nodes.0.host'],
    ['a malformed IPv6 address', withNode({ host: 'fd00:::17::1' }), 'nodes.0.host'],
    ['an empty protocol', withNode({ protocol: '' }), 'nodes.0.protocol'],
    ['no GPUs', withNode({ gpus: [] }), 'nodes.0.gpus'],
    ['17 GPUs of one model', withNode({ gpus: [{ model: 'GRID K2', count: 17 }] }), 'nodes.0.gpus.0.count'],
    [
      'one GPU model listed twice',
      withNode({
        gpus: [
          { model: 'L40S', count: 1 },
          { model: 'L40S', count: 1 },
        ],
      }),
      'nodes.0.gpus.1.model',
    ],
    ['a label value that is not a string', withNode({ labels: { region: 5 } }), 'nodes.0.labels.region'],
    [
      'a label key over 63 characters',
      withNode({ labels: { ['k'.repeat(64)]: 'v' } }),
      `nodes.0.labels.${'k'.repeat(64)}`,
    ],
    [
      'more than 32 labels',
      withNode({ labels: Object.fromEntries(Array.from({ length: 33 }, (_, index) => [`k${index}`, 'v'])) }),
      'nodes.0.labels',
    ],
    ['an unknown field in a node', withNode({ gpu: 'K2' }), 'nodes.0.gpu'],
    [
      'one node registered twice',
      { ...scaleUp(), nodes: [...(scaleUp().nodes as unknown[]), ...(scaleUp().nodes as unknown[])] },
      'nodes.1.id',
    ],
  ])('rejects a contextualization body with %s', (_, body, field) => {
    expectRejected(() => parseContextualize(body), field);
  });

  it.each<[string, unknown, string]>([
    ['null', null, 'body'],
    ['a string', 'orchestration.autoscaling.end', 'body'],
    ['a number', 7, 'body'],
    ['an empty array', [], 'body'],
    ['an array of numbers', [1, 2], '0'],
    ['an array holding null', [null], '0'],
    ['an array of empty objects', [{}], '0.message_id'],
    ['an event without message_id', { event_type: 'x', traits: [] }, 'message_id'],
    [
      'an event whose traits are not a list',
      { message_id: 'm', event_type: 'x', traits: 'capacity=5' },
      'traits',
    ],
    ['a notification without event_type', { message_id: 'm', payload: {} }, 'event_type'],
    ['a notification whose event_type is a number', { message_id: 'm', event_type: 5 }, 'event_type'],
    [
      'a notification without message_id',
      { event_type: 'orchestration.autoscaling.end', payload: {} },
      'message_id',
    ],
    [
      'an autoscaling payload that is a string',
      { message_id: 'm', event_type: 'orchestration.autoscaling.end', payload: 'x' },
      'payload',
    ],
  ])('rejects a notifications body that is %s', (_, body, field) => {
    expectRejected(() => parseNotifications(body), field);
  });

  it.each<[string, unknown, string]>([
    ['null', null, 'body'],
    ['a string', 'alarm', 'body'],
    ['a number', 3, 'body'],
    ['an array', [fixture('aodh-threshold-alarm-gpu-temperature.json')], 'body'],
    ['an object without alarm_id', { current: 'alarm', previous: 'ok' }, 'alarm_id'],
    ['a numeric alarm_id', { alarm_id: 12, current: 'alarm' }, 'alarm_id'],
    ['a numeric current state', { alarm_id: 'a', current: 1 }, 'current'],
    [
      'reason_data that is a string',
      { alarm_id: 'a', current: 'alarm', reason_data: 'threshold' },
      'reason_data',
    ],
    [
      'an event alarm without its event',
      { alarm_id: 'a', current: 'alarm', reason_data: { type: 'event' } },
      'reason_data.event',
    ],
    [
      'an event alarm whose event lacks event_type',
      {
        alarm_id: 'a',
        current: 'alarm',
        reason_data: { type: 'event', event: { message_id: 'm', traits: [] } },
      },
      'reason_data.event.event_type',
    ],
    [
      'a 2014 alarm whose notification lacks message_id',
      {
        alarm_id: 'a',
        current: 'alarm',
        reason_data: { event_type: 'orchestration.autoscaling.end', payload: {} },
      },
      'reason_data.message_id',
    ],
    [
      'a 2014 alarm with a garbage capacity',
      {
        alarm_id: 'a',
        current: 'alarm',
        reason_data: {
          event_type: 'orchestration.autoscaling.end',
          message_id: 'm',
          payload: { capacity: 'lots' },
        },
      },
      'reason_data.payload.capacity',
    ],
  ])('rejects an Aodh body that is %s', (_, body, field) => {
    expectRejected(() => parseAodhAlarm(body, noQuery), field);
  });
});

describe('hooks: any JSON value is an event or a 400 naming the field', () => {
  const heatEnd = (payload: unknown) => ({
    event_type: 'orchestration.autoscaling.end',
    message_id: 'm-total',
    payload,
  });

  it.each([
    ['an object whose own toString is a number', { toString: 1 }],
    ['an object whose valueOf is an object', { valueOf: {} }],
    ['an array 8,000 levels deep', JSON.parse(`${'['.repeat(8_000)}1${']'.repeat(8_000)}`)],
    ['a 70,000-character string', 'x'.repeat(70_000)],
  ])('rejects an adjustment that is %s, naming it, without calling anything on it', (_, value) => {
    expectRejected(() => parseNotifications(heatEnd({ adjustment: value })), 'payload.adjustment');
    expectRejected(() => parseNotifications(heatEnd({ capacity: value })), 'payload.capacity');
  });

  it('rejects an untyped Ceilometer trait holding an object where a number belongs', () => {
    const event = {
      message_id: 'm-untyped',
      event_type: 'orchestration.autoscaling.end',
      traits: [['capacity', 0, { toString: 1 }]],
    };
    expectRejected(() => parseNotifications([event]), '0.traits.0');
  });

  it('takes no Object.prototype member for a trait type or an adjustment type', () => {
    const event = {
      message_id: 'm-proto',
      event_type: 'orchestration.autoscaling.end',
      traits: [{ name: 'capacity', type: 'constructor', value: 3 }],
    };
    expectRejected(() => parseNotifications([event]), '0.traits.0');
    expectRejected(
      () => parseNotifications(heatEnd({ adjustment: -1, adjustment_type: 'constructor' })),
      'payload.adjustment_type',
    );
  });

  it('rejects an oslo envelope whose notification nests deeper than the body cap', () => {
    const deep = `{"event_type":"x.y","message_id":"m","payload":${'['.repeat(65)}${']'.repeat(65)}}`;
    expectRejected(() => parseNotifications({ 'oslo.message': deep }), 'oslo.message');
  });
});
