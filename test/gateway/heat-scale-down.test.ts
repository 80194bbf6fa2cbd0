/**
 * Heat scale-downs without hooks, end to end: real gateways on port 0 (the embedded store, and two
 * instances sharing a real Redis, gamers on one and Heat's notifications on the other), real WebSocket
 * gamers on every node, Heat's notifications as oslo delivers them. Heat removes members itself between
 * `orchestration.autoscaling.start` and `.end` (failed first, then the oldest, one-second resolution,
 * then by name); the VCA must drain exactly those, move their gamers, and touch no other group.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { idleTelemetry, PlayClient, startTestGateway, type TestGateway } from '../support/gateway.js';
import { eventually, settle, wholeL4 } from './gamer-flow.js';

const fixtureDir = path.resolve(import.meta.dirname, '../fixtures/webhooks');

/** The group's nested stack id: what Heat's notifications carry as `groupname`. */
const vcaStack = '3f1c0a7e-5b2d-4c9e-8a61-0d2e4b6f8a10';
const otherStack = '9b8a7c6d-1e2f-4a3b-9c8d-7e6f5a4b3c2d';

/** A Heat notification as oslo delivers it: the scale-down fixture, with this phase and payload. */
function heatNotification(
  messageId: string,
  phase: 'start' | 'end' | 'error',
  payload: Record<string, unknown>,
): Record<string, unknown> {
  const body = JSON.parse(
    readFileSync(path.join(fixtureDir, 'oslo-notification-autoscaling-end-scale-down.json'), 'utf8'),
  );
  body.message_id = messageId;
  body.event_type = `orchestration.autoscaling.${phase}`;
  body.payload = { ...body.payload, groupname: vcaStack, ...payload };
  return body;
}

/** The same message as Ceilometer's HTTP publisher sends it with its stock event definitions: no traits. */
function bareCeilometerEvent(messageId: string, phase: 'start' | 'end'): Record<string, unknown> {
  return {
    message_id: messageId,
    event_type: `orchestration.autoscaling.${phase}`,
    generated: '2026-11-20T11:05:02.118273',
    traits: [['service', 1, 'orchestration.render-ctl-1']],
  };
}

interface NodeSpec {
  id: string;
  gpus: number;
  /** Heat membership: group stack id, group name, member name, creation time. */
  heat?: { stack: string; group: string; member: string; createdAt: string; failed?: boolean };
  /** The contextualization group (defaults to the Heat group name, or `spare`). */
  group?: string;
}

/**
 * vca-asg, in Heat's removal order: h1 (oldest, two GPUs), h3 and h2 (created in the same second: by
 * name), h4. other-asg: o1 and o2, older than all of them. Registered out of that order.
 */
const vcaAsg: NodeSpec[] = [
  {
    id: 'h4',
    gpus: 1,
    heat: { stack: vcaStack, group: 'vca-asg', member: 'ccc-h4', createdAt: '2026-11-19T10:09:00Z' },
  },
  {
    id: 'h2',
    gpus: 1,
    heat: { stack: vcaStack, group: 'vca-asg', member: 'zzz-h2', createdAt: '2026-11-19T10:05:00.200Z' },
  },
  {
    id: 'h1',
    gpus: 2,
    heat: { stack: vcaStack, group: 'vca-asg', member: 'yyy-h1', createdAt: '2026-11-19T10:00:00Z' },
  },
  {
    id: 'h3',
    gpus: 1,
    heat: { stack: vcaStack, group: 'vca-asg', member: 'bbb-h3', createdAt: '2026-11-19T10:05:00.900Z' },
  },
];
const otherAsg: NodeSpec[] = [
  {
    id: 'o1',
    gpus: 1,
    heat: { stack: otherStack, group: 'other-asg', member: 'aaa-o1', createdAt: '2026-11-19T09:00:00Z' },
  },
  {
    id: 'o2',
    gpus: 1,
    heat: { stack: otherStack, group: 'other-asg', member: 'aab-o2', createdAt: '2026-11-19T09:00:01Z' },
  },
];
/** Room for three whole-L4 sessions, outside both groups. */
const spares: NodeSpec[] = [
  { id: 's1', gpus: 2, group: 'spare' },
  { id: 's2', gpus: 1, group: 'spare' },
];

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => redis?.stop());

const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

let prefixes = 0;

/**
 * One gateway (embedded), or two sharing a Redis store (`redis`): gamers play on `play`, Heat's
 * notifications go to `hooks`.
 */
async function gateways(store: 'embedded' | 'redis'): Promise<{ play: TestGateway; hooks: TestGateway }> {
  if (store === 'embedded') {
    const play = await startTestGateway();
    opened.push(play);
    return { play, hooks: play };
  }
  const overrides = {
    store: { kind: 'redis', redis: { url: redis.url, keyPrefix: `vca-heat-${process.pid}-${++prefixes}` } },
  };
  const play = await startTestGateway(overrides);
  opened.push(play);
  const hooks = await startTestGateway(overrides);
  opened.push(hooks);
  return { play, hooks };
}

async function register(gw: TestGateway, nodes: readonly NodeSpec[]): Promise<void> {
  for (const node of nodes) {
    const orchestrator = node.heat
      ? {
          kind: 'heat',
          stackId: node.heat.stack,
          group: node.heat.group,
          member: node.heat.member,
          createdAt: node.heat.createdAt,
          ...(node.heat.failed ? { failed: true } : {}),
        }
      : undefined;
    const credentials = await gw.registerNode(
      node.id,
      'L4',
      node.gpus,
      {},
      {
        group: node.group ?? node.heat?.group ?? 'spare',
        ...(orchestrator ? { orchestrator } : {}),
      },
    );
    expect((await gw.telemetry(node.id, credentials.token, idleTelemetry(node.gpus))).status).toBe(200);
  }
}

interface Gamer {
  client: PlayClient;
  sessionId: string;
  nodeId: string;
}

/** One WebSocket gamer per GPU of `nodes` (a whole-L4 session fills a GPU, so each lands on its own). */
async function gamersOn(gw: TestGateway, nodes: readonly NodeSpec[]): Promise<Gamer[]> {
  const gamers: Gamer[] = [];
  const gpus = nodes.reduce((total, node) => total + node.gpus, 0);
  for (let i = 0; i < gpus; i++) {
    const client = await PlayClient.connect(gw.wsUrl);
    opened.push(client);
    client.send({ type: 'request', ...wholeL4 });
    const assigned = await client.next('assigned');
    gamers.push({ client, sessionId: assigned.sessionId, nodeId: assigned.node.id });
  }
  const perNode = new Map<string, number>();
  for (const gamer of gamers) perNode.set(gamer.nodeId, (perNode.get(gamer.nodeId) ?? 0) + 1);
  for (const node of nodes) expect(perNode.get(node.id), node.id).toBe(node.gpus);
  return gamers;
}

async function nodes(gw: TestGateway): Promise<Record<string, { state: string; sessions: number }>> {
  const listed = await gw.request('operator', 'GET', '/v1/nodes');
  expect(listed.status).toBe(200);
  return Object.fromEntries(
    listed.body.nodes.map((node: any) => [node.id, { state: node.state, sessions: node.sessions }]),
  );
}

async function notify(gw: TestGateway, body: unknown) {
  const answer = await gw.hook('notifications', body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body.events[0];
}

async function metric(gw: TestGateway, pattern: RegExp): Promise<number> {
  const text = String((await gw.request('operator', 'GET', '/metrics')).body);
  const match = pattern.exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

const lostMetric = /vca_sessions_lost_total\{reason="node-removed"\} (\d+)/;

/** Every gamer on `victims` is told to migrate and then assigned to a spare; nobody else hears a thing. */
async function expectMovedToSpares(gamers: readonly Gamer[], victims: readonly string[]): Promise<void> {
  for (const gamer of gamers) {
    if (victims.includes(gamer.nodeId)) {
      const migrate = await gamer.client.next('migrate');
      expect(migrate).toMatchObject({ sessionId: gamer.sessionId, from: { nodeId: gamer.nodeId } });
      const assigned = await gamer.client.next('assigned');
      expect(assigned.sessionId).toBe(gamer.sessionId);
      expect(['s1', 's2']).toContain(assigned.node.id);
    }
  }
  await settle(100);
  for (const gamer of gamers) {
    if (!victims.includes(gamer.nodeId)) {
      await expect(gamer.client.next('migrate', 50)).rejects.toThrow(/no "migrate" message/);
    }
  }
}

describe.each(['embedded', 'redis'] as const)('heat scale-down without hooks (%s store)', (store) => {
  it.each([
    ['by one (change_in_capacity -1)', { adjustment: -1, adjustment_type: 'change_in_capacity' }, 3, ['h1']],
    [
      'to exactly 2 (ExactCapacity 4 -> 2)',
      { adjustment: 2, adjustment_type: 'ExactCapacity' },
      2,
      ['h1', 'h3'],
    ],
    [
      'by -50 % (percent_change_in_capacity)',
      { adjustment: -50, adjustment_type: 'percent_change_in_capacity' },
      2,
      ['h1', 'h3'],
    ],
  ] as const)(
    'scales a group of 4 down %s: Heat’s victims drain at start, their gamers move, nothing else changes',
    async (_, adjustment, after, victimTuple) => {
      const victims: readonly string[] = victimTuple;
      const { play, hooks } = await gateways(store);
      await register(hooks, [...vcaAsg, ...otherAsg]);
      const gamers = await gamersOn(play, [...vcaAsg, ...otherAsg]);
      await register(hooks, spares);

      const start = heatNotification('heat-start-1', 'start', { capacity: 4, ...adjustment });
      const started = await notify(hooks, start);
      expect(started).toMatchObject({
        action: 'heat-resize',
        group: vcaStack,
        victims,
        replayed: false,
        error: null,
      });
      await expectMovedToSpares(gamers, victims);
      const afterStart = await eventually(async () => {
        const listed = await nodes(hooks);
        for (const victim of victims) expect(listed[victim]).toBeUndefined();
        return listed;
      });
      for (const id of ['h1', 'h2', 'h3', 'h4'].filter((id) => !victims.includes(id))) {
        expect(afterStart[id]).toEqual({ state: 'ready', sessions: 1 });
      }
      expect(afterStart.o1).toEqual({ state: 'ready', sessions: 1 });
      expect(afterStart.o2).toEqual({ state: 'ready', sessions: 1 });

      // A replay of the start acts once.
      expect(await notify(hooks, start)).toMatchObject({ replayed: true, victims });
      expect(await nodes(hooks)).toEqual(afterStart);

      const end = heatNotification('heat-end-1', 'end', { capacity: after, ...adjustment });
      const ended = await notify(hooks, end);
      expect(ended).toMatchObject({ action: 'heat-resize', victims, replayed: false, lost: 0, error: null });
      expect(await notify(hooks, end)).toMatchObject({ replayed: true });
      expect(await nodes(hooks)).toEqual(afterStart);

      // Every session still plays: none was lost, each victim's moved once.
      for (const gamer of gamers) {
        const session = await play.request('gamer', 'GET', `/v1/sessions/${gamer.sessionId}`);
        expect(session.body.state, gamer.sessionId).toBe('assigned');
        expect(session.body.migrations).toBe(victims.includes(gamer.nodeId) ? 1 : 0);
      }
      expect(await metric(hooks, lostMetric)).toBe(0);
    },
  );

  it('case 1: an end alone (no start seen) removes Heat’s oldest member, not the node with the fewest sessions', async () => {
    const { play, hooks } = await gateways(store);
    await register(hooks, [...vcaAsg, ...otherAsg]);
    const gamers = await gamersOn(play, [...vcaAsg, ...otherAsg]);
    await register(hooks, spares);
    // h1 hosts two sessions, every other node one: the VCA's own pick would have been another node.
    const ended = await notify(
      hooks,
      heatNotification('heat-end-only', 'end', {
        capacity: 3,
        adjustment: -1,
        adjustment_type: 'change_in_capacity',
      }),
    );
    expect(ended).toMatchObject({ victims: ['h1'], removed: ['h1'], migrated: 2, lost: 0 });
    await expectMovedToSpares(gamers, ['h1']);
    const listed = await nodes(hooks);
    expect(listed.h1).toBeUndefined();
    for (const id of ['h2', 'h3', 'h4', 'o1', 'o2'])
      expect(listed[id]).toEqual({ state: 'ready', sessions: 1 });
  });

  it('members registered with the stack holding the group (as deploy/heat does) are found by the notification stack id', async () => {
    const { play, hooks } = await gateways(store);
    // What a member template can know: the root stack's id and the group's resource name; Heat's
    // notifications name the group by its nested stack id, and the root stack by stack_id.
    const rootStack = '5eef9488-5274-4305-bedb-91f5ed45cdd6';
    const asRegistered = vcaAsg.map((node) => ({ ...node, heat: { ...node.heat!, stack: rootStack } }));
    await register(hooks, [...asRegistered, ...otherAsg]);
    const gamers = await gamersOn(play, [...asRegistered, ...otherAsg]);
    await register(hooks, spares);
    const started = await notify(
      hooks,
      heatNotification('heat-root-start', 'start', {
        groupname: 'f00dfeed-0000-4000-8000-00000000c0de',
        stack_id: rootStack,
        capacity: 4,
        adjustment: -1,
        adjustment_type: 'change_in_capacity',
      }),
    );
    expect(started).toMatchObject({ victims: ['h1'] });
    await expectMovedToSpares(gamers, ['h1']);
    // A notification about another stack (or a stack holding two registered groups) finds no member.
    const elsewhere = await notify(
      hooks,
      heatNotification('heat-other-root', 'start', {
        groupname: 'f00dfeed-0000-4000-8000-00000000beef',
        stack_id: '00000000-0000-4000-8000-000000000000',
        capacity: 2,
        adjustment: -1,
        adjustment_type: 'change_in_capacity',
      }),
    );
    expect(elsewhere.victims).toEqual([]);
  });

  it('registers a node with its Heat membership, shown on the node; bad membership is a 400 that registers nothing', async () => {
    const { hooks } = await gateways(store);
    await register(hooks, [vcaAsg[2]!]);
    const shown = await hooks.request('operator', 'GET', '/v1/nodes/h1');
    expect(shown.body.orchestrator).toEqual({
      kind: 'heat',
      stackId: vcaStack,
      group: 'vca-asg',
      member: 'yyy-h1',
      createdAt: '2026-11-19T10:00:00Z',
    });
    const refused = await hooks.hook('contextualize', {
      eventId: 'bad-membership',
      event: 'scale-up',
      group: 'vca-asg',
      nodes: [
        {
          id: 'h9',
          host: '127.0.0.1',
          port: 5900,
          protocol: 'webrtc',
          gpus: [{ model: 'L4', count: 1 }],
          orchestrator: {
            kind: 'heat',
            stackId: vcaStack,
            group: 'vca-asg',
            member: 'm9',
            createdAt: '2026-13-01T00:00:00Z',
          },
        },
      ],
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({
      code: 'VCA_ERR_VALIDATION',
      field: 'nodes.0.orchestrator.createdAt',
    });
    expect((await nodes(hooks)).h9).toBeUndefined();
  });

  it('a start that arrives after its own end (another route) drains nothing more', async () => {
    const { play, hooks } = await gateways(store);
    await register(hooks, [...vcaAsg, ...otherAsg]);
    const gamers = await gamersOn(play, [...vcaAsg, ...otherAsg]);
    await register(hooks, spares);
    const change = { adjustment: -1, adjustment_type: 'change_in_capacity' };
    expect(
      await notify(hooks, heatNotification('late-end', 'end', { capacity: 3, ...change })),
    ).toMatchObject({
      victims: ['h1'],
      removed: ['h1'],
    });
    await expectMovedToSpares(gamers, ['h1']);
    const afterEnd = await nodes(hooks);
    const late = await notify(hooks, heatNotification('late-start', 'start', { capacity: 4, ...change }));
    expect(late).toMatchObject({ victims: [], draining: [], replayed: false });
    expect(await nodes(hooks)).toEqual(afterEnd);
    // The next resize of the group is judged afresh: Heat's next member, h3.
    const next = await notify(hooks, heatNotification('next-start', 'start', { capacity: 3, ...change }));
    expect(next).toMatchObject({ victims: ['h3'] });
  });

  it('case 2: exact_capacity 4 -> 3 takes the size before from the start it saw', async () => {
    const { play, hooks } = await gateways(store);
    await register(hooks, [...vcaAsg, ...otherAsg]);
    const gamers = await gamersOn(play, [...vcaAsg, ...otherAsg]);
    await register(hooks, spares);
    const exact = { adjustment: 3, adjustment_type: 'exact_capacity' };
    // Ceilometer-style start with its size: remembered for the group; the end alone says only 3.
    expect(
      await notify(hooks, heatNotification('exact-start', 'start', { capacity: 4, ...exact })),
    ).toMatchObject({
      victims: ['h1'],
    });
    await expectMovedToSpares(gamers, ['h1']);
    expect(
      await notify(hooks, heatNotification('exact-end', 'end', { capacity: 3, ...exact })),
    ).toMatchObject({
      victims: ['h1'],
      lost: 0,
    });
    const listed = await nodes(hooks);
    expect(Object.keys(listed).sort()).toEqual(['h2', 'h3', 'h4', 'o1', 'o2', 's1', 's2']);
  });

  it('case 3: a count drain for a group without membership stays inside that group', async () => {
    const { play, hooks } = await gateways(store);
    // No membership: only the contextualization group. other-asg's nodes are the lighter ones.
    await register(hooks, [
      { id: 'v1', gpus: 2, group: 'vca-asg' },
      { id: 'v2', gpus: 2, group: 'vca-asg' },
      { id: 'x1', gpus: 1, group: 'other-asg' },
    ]);
    await gamersOn(play, [
      { id: 'v1', gpus: 2 },
      { id: 'v2', gpus: 2 },
      { id: 'x1', gpus: 1 },
    ]);
    const ended = await notify(hooks, {
      ...heatNotification('legacy-end', 'end', {
        groupname: 'vca-asg',
        capacity: 1,
        adjustment: -1,
        adjustment_type: 'change_in_capacity',
      }),
    });
    expect(ended.draining).toHaveLength(1);
    expect(['v1', 'v2']).toContain(ended.draining[0].id);
    expect((await nodes(hooks)).x1).toEqual({ state: 'ready', sessions: 1 });
  });

  it('case 4: a Ceilometer event without traits first only records; the oslo delivery of the same message then acts, once', async () => {
    const { play, hooks } = await gateways(store);
    await register(hooks, [...vcaAsg, ...otherAsg]);
    const gamers = await gamersOn(play, [...vcaAsg, ...otherAsg]);
    await register(hooks, spares);
    const before = await nodes(hooks);

    const poor = await notify(hooks, bareCeilometerEvent('heat-msg-4', 'start'));
    expect(poor).toMatchObject({ action: 'record', replayed: false, draining: [] });
    expect(await nodes(hooks)).toEqual(before);

    const oslo = heatNotification('heat-msg-4', 'start', {
      capacity: 4,
      adjustment: -1,
      adjustment_type: 'change_in_capacity',
    });
    // Through the other instance, when there are two: the claim is the store's, not an instance's.
    const rich = await notify(play, oslo);
    expect(rich).toMatchObject({ action: 'heat-resize', replayed: false, victims: ['h1'] });
    await expectMovedToSpares(gamers, ['h1']);
    const afterRich = await eventually(async () => {
      const listed = await nodes(hooks);
      expect(listed.h1).toBeUndefined();
      return listed;
    });

    // Replays, rich or poor, on either instance: answered, nothing more happens.
    expect(await notify(hooks, oslo)).toMatchObject({ replayed: true, victims: ['h1'] });
    expect(await notify(play, oslo)).toMatchObject({ replayed: true });
    expect(await notify(hooks, bareCeilometerEvent('heat-msg-4', 'start'))).toMatchObject({
      replayed: true,
      victims: ['h1'],
    });
    expect(await nodes(hooks)).toEqual(afterRich);
  });

  it('sessions no other node has room for end as node-removed when Heat’s end says their node is gone, and are counted', async () => {
    const { play, hooks } = await gateways(store);
    await register(hooks, vcaAsg);
    const gamers = await gamersOn(play, vcaAsg);
    const ended = await notify(
      hooks,
      heatNotification('no-room-end', 'end', {
        capacity: 3,
        adjustment: -1,
        adjustment_type: 'change_in_capacity',
      }),
    );
    expect(ended).toMatchObject({ victims: ['h1'], removed: ['h1'], migrated: 0, lost: 2 });
    for (const gamer of gamers.filter((entry) => entry.nodeId === 'h1')) {
      expect(await gamer.client.next('ended')).toMatchObject({
        sessionId: gamer.sessionId,
        reason: 'node-removed',
      });
    }
    expect((await nodes(hooks)).h1).toBeUndefined();
    expect(await metric(hooks, lostMetric)).toBe(2);
  });
});
