/**
 * The Heat pre-delete hook flow end to end: a real gateway (port 0, fake clock), real WebSocket and
 * REST gamers, nodes registered through the contextualization webhook with their Heat membership, and
 * a Heat double (test/openstack/heat-double.ts) that pauses a removed member on its server's hook.
 * The runner is polled by hand (its own timer is set to an hour) except where the gateway's timer is
 * what is tested.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { HeatClient } from '../../src/openstack/heat.js';
import { HeatPreDeleteHooks } from '../../src/openstack/heat-pre-delete-hooks.js';
import { HeatHookRunner, type PollReport } from '../../src/scaling/heat-hooks.js';
import {
  advance,
  eventually,
  getSession,
  halfL4,
  type ReadyNode,
  reportIdle,
  settle,
  wholeL4,
} from '../gateway/gamer-flow.js';
import { idleTelemetry, PlayClient, startTestGateway, type TestGateway } from '../support/gateway.js';
import { HeatDouble, type HeatMember } from './heat-double.js';
import { KeystoneDouble } from './keystone-double.js';

let gw: TestGateway | undefined;
let heat: HeatDouble;
/** Set by a test that started its own Heat double (with Keystone) before setup(). */
let heatStarted = false;
let keystone: KeystoneDouble | undefined;
const clients: PlayClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await gw?.close();
  gw = undefined;
  await heat?.stop();
  heatStarted = false;
  await keystone?.stop();
  keystone = undefined;
});

const drainDeadlineSeconds = 30;

async function setup(heatOverrides: Record<string, unknown> = {}, more: Record<string, unknown> = {}) {
  if (!heatStarted) {
    heat = new HeatDouble();
    await heat.start();
  }
  gw = await startTestGateway({
    leases: { restSeconds: 600 },
    openstack: {
      heat: {
        url: heat.url,
        stackId: heat.root.id,
        stackName: heat.root.name,
        projectId: heat.projectId,
        pollSeconds: 3600,
        drainDeadlineSeconds,
        ...heatOverrides,
      },
    },
    ...more,
  });
  const clock = gw.clock;
  heat.now = () => clock.now();
  return gw;
}

function poll(): Promise<PollReport> {
  return gw!.gateway.vca.heatHooks!.pollOnce();
}

let eventIds = 0;
/** A Heat member's node, registered as its cloud-init would (with its membership) and reporting idle. */
async function registerMember(member: HeatMember, id: string): Promise<ReadyNode> {
  const result = await gw!.hook('contextualize', {
    eventId: `heat-up-${id}-${++eventIds}`,
    event: 'scale-up',
    group: heat.group.resource,
    nodes: [
      {
        id,
        host: '127.0.0.1',
        port: 5900,
        protocol: 'webrtc',
        gpus: [{ model: 'L4', count: 1 }],
        orchestrator: {
          kind: 'heat',
          stackId: heat.root.id,
          group: heat.group.resource,
          member: member.name,
          serverId: member.serverId,
          createdAt: member.createdAt,
        },
      },
    ],
  });
  expect(result.status, JSON.stringify(result.body)).toBe(200);
  const token = result.body.registered[0].token as string;
  expect((await gw!.telemetry(id, token, idleTelemetry(1))).status).toBe(200);
  return { id, token, ticketKey: result.body.registered[0].ticketKey, gpuCount: 1 };
}

async function connect(): Promise<PlayClient> {
  const client = await PlayClient.connect(gw!.wsUrl);
  clients.push(client);
  return client;
}

async function nodeState(id: string): Promise<string> {
  const answer = await gw!.request('operator', 'GET', `/v1/nodes/${id}`);
  return answer.status === 404 ? 'gone' : answer.body.state;
}

describe('heat hooks: drain before delete', () => {
  it('drains exactly the paused member; at the deadline sessions migrate (WebSocket: migrate, assigned; REST: next call), then the hook is cleared once', async () => {
    await setup();
    const [memberA, memberB, memberC] = [heat.addMember(), heat.addMember(), heat.addMember()];
    const nodeA = await registerMember(memberA!, 'render-a');
    const gamer = await connect();
    gamer.send({ type: 'request', ...halfL4 });
    const assigned = await gamer.next('assigned');
    expect(assigned.node.id).toBe('render-a');
    const rest = await gw!.request('gamer', 'POST', '/v1/sessions', halfL4);
    expect(rest.status).toBe(201);
    expect(rest.body.node.id).toBe('render-a');
    const nodeB = await registerMember(memberB!, 'render-b');
    const nodeC = await registerMember(memberC!, 'render-c');

    // Nothing paused: the runner asks Heat and does nothing.
    expect(await poll()).toEqual({ leader: true, paused: 0, released: 0, errors: 0 });

    // Heat removes member A (its own choice) and holds it on the server's pre-delete hook.
    heat.removeMember(memberA!);
    expect(await poll()).toMatchObject({ leader: true, paused: 1, released: 0, errors: 0 });
    expect(await nodeState('render-a')).toBe('draining');
    expect(await nodeState('render-b')).toBe('ready');
    expect(await nodeState('render-c')).toBe('ready');
    expect(heat.signalsTo(memberA!)).toHaveLength(0);

    // Before the deadline: the sessions stay, the hook holds.
    await advance(gw!, drainDeadlineSeconds - 5, { renewWebsocket: true });
    await reportIdle(gw!, nodeA, nodeB, nodeC);
    expect(await poll()).toMatchObject({ paused: 1, released: 0 });
    expect(heat.signalsTo(memberA!)).toHaveLength(0);

    // At the deadline: what is left migrates, then the hook is cleared.
    await advance(gw!, 6, { renewWebsocket: true });
    await reportIdle(gw!, nodeB, nodeC);
    expect(await poll()).toMatchObject({ paused: 1, released: 1, errors: 0 });
    expect(await gamer.next('*')).toMatchObject({
      type: 'migrate',
      sessionId: assigned.sessionId,
      from: { nodeId: 'render-a' },
    });
    const moved = await gamer.next('*');
    expect(moved).toMatchObject({ type: 'assigned', sessionId: assigned.sessionId, migrations: 1 });
    expect(['render-b', 'render-c']).toContain(moved.node.id);
    const restNow = await getSession(gw!, rest.body.sessionId);
    expect(restNow).toMatchObject({ state: 'assigned', migrations: 1 });
    expect(['render-b', 'render-c']).toContain(restNow.node.id);

    const signals = heat.signalsTo(memberA!);
    expect(signals).toHaveLength(1);
    expect(signals[0]).toMatchObject({ body: { unset_hook: 'pre-delete' }, status: 200 });
    expect(memberA!.deleted).toBe(true);
    expect(await nodeState('render-a')).toBe('gone');

    // Later polls find nothing more to do: the hook is never signalled again.
    expect(await poll()).toMatchObject({ paused: 0, released: 0 });
    expect(heat.signalsTo(memberA!)).toHaveLength(1);
    expect(heat.calls.filter((call) => call.method === 'POST')).toHaveLength(1);
  });

  it('a group of 4 shrunk to 2 with hooks: both paused members drain into spare room, no session lost, the others untouched', async () => {
    await setup();
    const members = [heat.addMember(), heat.addMember(), heat.addMember(), heat.addMember()];
    const nodes: ReadyNode[] = [];
    for (const [i, member] of members.entries()) nodes.push(await registerMember(member!, `render-${i}`));
    // One whole-L4 gamer per member: a session on every node of the group.
    const gamers: Array<{ client: PlayClient; sessionId: string; nodeId: string }> = [];
    for (let i = 0; i < members.length; i++) {
      const client = await connect();
      client.send({ type: 'request', ...wholeL4 });
      const assigned = await client.next('assigned');
      gamers.push({ client, sessionId: assigned.sessionId, nodeId: assigned.node.id });
    }
    expect(new Set(gamers.map((gamer) => gamer.nodeId)).size).toBe(4);
    // Room elsewhere, outside the group: two spare L4s.
    const spares: ReadyNode[] = [];
    for (const id of ['spare-1', 'spare-2']) {
      const credentials = await gw!.registerNode(id, 'L4', 1, {}, { group: 'spare' });
      expect((await gw!.telemetry(id, credentials.token, idleTelemetry(1))).status).toBe(200);
      spares.push({ id, gpuCount: 1, ...credentials });
    }

    // Heat (exact_capacity 4 -> 2) removes two members of its choosing and holds both on their hooks.
    const removed = [members[1]!, members[3]!];
    for (const member of removed) heat.removeMember(member);
    expect(await poll()).toMatchObject({ paused: 2, released: 0, errors: 0 });
    expect(await nodeState('render-1')).toBe('draining');
    expect(await nodeState('render-3')).toBe('draining');
    expect(await nodeState('render-0')).toBe('ready');
    expect(await nodeState('render-2')).toBe('ready');

    await advance(gw!, drainDeadlineSeconds + 1, { renewWebsocket: true });
    await reportIdle(gw!, nodes[0]!, nodes[2]!, ...spares);
    expect(await poll()).toMatchObject({ paused: 2, released: 2, errors: 0 });
    for (const gamer of gamers) {
      if (gamer.nodeId === 'render-1' || gamer.nodeId === 'render-3') {
        expect(await gamer.client.next('*')).toMatchObject({ type: 'migrate', sessionId: gamer.sessionId });
        const moved = await gamer.client.next('*');
        expect(moved).toMatchObject({ type: 'assigned', sessionId: gamer.sessionId });
        expect(['spare-1', 'spare-2']).toContain(moved.node.id);
      } else {
        expect((await getSession(gw!, gamer.sessionId)).node.id).toBe(gamer.nodeId);
      }
    }
    for (const member of removed) {
      expect(heat.signalsTo(member)).toHaveLength(1);
      expect(member.deleted).toBe(true);
    }
    expect(heat.signalsTo(members[0]!)).toHaveLength(0);
    expect(heat.signalsTo(members[2]!)).toHaveLength(0);
    expect(await nodeState('render-1')).toBe('gone');
    expect(await nodeState('render-3')).toBe('gone');
    const lost = await gw!.request('operator', 'GET', '/metrics');
    expect(lost.body as string).not.toMatch(/vca_sessions_lost_total\{[^}]*\} [1-9]/);
  });

  it('clears the hook as soon as the node is empty, before the deadline, and only once while Heat lags', async () => {
    await setup();
    const [memberA, memberB] = [heat.addMember(), heat.addMember()];
    await registerMember(memberA!, 'render-a');
    const gamer = await connect();
    gamer.send({ type: 'request', ...halfL4 });
    expect((await gamer.next('assigned')).node.id).toBe('render-a');
    await registerMember(memberB!, 'render-b');

    heat.removeMember(memberA!);
    await poll();
    expect(await nodeState('render-a')).toBe('draining');
    // The gamer leaves: the node is empty, drained and removed.
    gamer.send({ type: 'end' });
    expect(await gamer.next('ended')).toMatchObject({ reason: 'released' });
    await eventually(async () => expect(await nodeState('render-a')).toBe('gone'));

    heat.clearEventLag = 2; // The next two listings still show the pause alone (Heat applies signals asynchronously).
    expect(await poll()).toMatchObject({ paused: 1, released: 1 });
    expect(heat.signalsTo(memberA!)).toHaveLength(1);
    for (let listing = 0; listing < 3; listing++) {
      expect(await poll()).toMatchObject({ paused: 0, released: 0, errors: 0 });
    }
    expect(heat.signalsTo(memberA!)).toHaveLength(1);
    expect(memberA!.deleted).toBe(true);
    expect(await nodeState('render-b')).toBe('ready');
  });

  it('an empty paused member is released at the first poll; a member with no registered node too', async () => {
    await setup();
    const [memberA, memberB, unknown] = [heat.addMember(), heat.addMember(), heat.addMember()];
    await registerMember(memberA!, 'render-a');
    await registerMember(memberB!, 'render-b');
    heat.removeMember(memberA!);
    heat.removeMember(unknown!);
    expect(await poll()).toMatchObject({ paused: 2, released: 2, errors: 0 });
    expect(heat.signalsTo(memberA!)).toHaveLength(1);
    expect(heat.signalsTo(unknown!)).toHaveLength(1);
    expect(await nodeState('render-a')).toBe('gone');
    expect(await nodeState('render-b')).toBe('ready');
  });

  it('hook already cleared by someone else, or member already gone: no error, nothing signalled twice', async () => {
    await setup();
    const [memberA, memberB] = [heat.addMember(), heat.addMember()];
    await registerMember(memberA!, 'render-a');
    await registerMember(memberB!, 'render-b');
    const gamer = await connect();
    gamer.send({ type: 'request', ...halfL4 });
    const onNode = (await gamer.next('assigned')).node.id as string;
    const member = onNode === 'render-a' ? memberA! : memberB!;

    heat.removeMember(member);
    await poll();
    expect(await nodeState(onNode)).toBe('draining');
    // An operator clears the hook by hand, Heat is slow to record it, the gamer leaves meanwhile.
    heat.clearEventLag = 3;
    heat.clearOutside(member);
    gamer.send({ type: 'end' });
    await gamer.next('ended');
    await eventually(async () => expect(await nodeState(onNode)).toBe('gone'));
    expect(await poll()).toMatchObject({ paused: 1, released: 1, errors: 0 });
    expect(heat.signalsTo(member).map((call) => call.status)).toEqual([400]);

    // A member removed and deleted before the runner could clear it (the stack is gone: 404).
    const other = member === memberA ? memberB! : memberA!;
    heat.removeMember(other);
    const hooks = new HeatPreDeleteHooks({
      client: new HeatClient({ endpoint: heat.url, projectId: heat.projectId, auth: null }),
      stack: heat.root,
    });
    const paused = (await hooks.pausedMembers()).find((entry) => entry.member === other.name);
    expect(paused).toBeDefined();
    heat.clearEventLag = 0;
    heat.clearOutside(other);
    expect(await hooks.release(paused!)).toBe('gone');
    expect(heat.signalsTo(other).map((call) => call.status)).toEqual([404]);
  });

  it('Heat 5xx: nothing changes, retried on the next poll', async () => {
    await setup();
    const [memberA, memberB] = [heat.addMember(), heat.addMember()];
    await registerMember(memberA!, 'render-a');
    await registerMember(memberB!, 'render-b');
    heat.removeMember(memberA!);
    heat.failNext = 1;
    expect(await poll()).toMatchObject({ leader: true, paused: 0, released: 0, errors: 1 });
    expect(await nodeState('render-a')).toBe('ready');
    // The listing works, the signal fails: the node drains (empty), the hook waits for the next poll.
    heat.failSignals = 1;
    expect(await poll()).toMatchObject({ paused: 1, released: 0, errors: 1 });
    expect(memberA!.hookSet).toBe(true);
    expect(await poll()).toMatchObject({ paused: 1, released: 1, errors: 0 });
    expect(heat.signalsTo(memberA!).map((call) => call.status)).toEqual([503, 200]);
    expect(memberA!.deleted).toBe(true);
  });

  it('a restarted runner (fresh memory, same store) finds the pending hook again and honours it', async () => {
    await setup();
    const [memberA, memberB] = [heat.addMember(), heat.addMember()];
    const nodeA = await registerMember(memberA!, 'render-a');
    const gamer = await connect();
    gamer.send({ type: 'request', ...halfL4 });
    const assigned = await gamer.next('assigned');
    expect(assigned.node.id).toBe('render-a');
    const nodeB = await registerMember(memberB!, 'render-b');
    heat.removeMember(memberA!);
    await poll();
    expect(await nodeState('render-a')).toBe('draining');
    const deadline = (await gw!.request('operator', 'GET', '/v1/nodes/render-a')).body.drainDeadline;

    // A new runner on the same store: what a restarted instance has (the node's drain is in the store).
    const old = gw!.gateway.vca.heatHooks!;
    const restarted = new HeatHookRunner({ ...old.options, instanceId: 'restarted' });
    await gw!.gateway.vca.store.forgetWebhook(old.options.leaderKey); // the old instance's lease lapsed
    expect(await restarted.pollOnce()).toMatchObject({ leader: true, paused: 1, released: 0 });
    expect((await gw!.request('operator', 'GET', '/v1/nodes/render-a')).body.drainDeadline).toBe(deadline);
    await advance(gw!, drainDeadlineSeconds + 1, { renewWebsocket: true });
    await reportIdle(gw!, nodeB);
    expect(await restarted.pollOnce()).toMatchObject({ paused: 1, released: 1 });
    expect(await gamer.next('*')).toMatchObject({ type: 'migrate', sessionId: assigned.sessionId });
    expect(await gamer.next('*')).toMatchObject({ type: 'assigned', node: { id: 'render-b' } });
    expect(heat.signalsTo(memberA!)).toHaveLength(1);
    void nodeA;
  });

  it('two runners on one store: only the leader acts; the other takes over once the lease lapses', async () => {
    await setup({ pollSeconds: 10 });
    const [memberA, memberB] = [heat.addMember(), heat.addMember()];
    await registerMember(memberA!, 'render-a');
    await registerMember(memberB!, 'render-b');
    const first = gw!.gateway.vca.heatHooks!;
    const second = new HeatHookRunner({ ...first.options, instanceId: 'second' });
    expect(await first.pollOnce()).toMatchObject({ leader: true });
    const listings = heat.calls.length;
    expect(await second.pollOnce()).toEqual({ leader: false, paused: 0, released: 0, errors: 0 });
    expect(heat.calls.length).toBe(listings);
    // The leader stops polling; its lease (3 poll intervals) runs out.
    gw!.clock.advance(31_000);
    heat.removeMember(memberA!);
    expect(await second.pollOnce()).toMatchObject({ leader: true, paused: 1, released: 1 });
    expect(await first.pollOnce()).toMatchObject({ leader: false });
    expect(heat.signalsTo(memberA!)).toHaveLength(1);
    // A leader that stops gives the lead up (gateway.stop does): the other leads at once.
    await second.resign();
    expect(await first.pollOnce()).toMatchObject({ leader: true });
    await first.resign();
    await first.resign(); // twice, or without holding it: changes nothing
    expect(await second.pollOnce()).toMatchObject({ leader: true });
    expect(await first.pollOnce()).toMatchObject({ leader: false });
  });

  it("the gateway's own timer polls Heat and clears the hook of an empty member", async () => {
    await setup({ pollSeconds: 1 });
    const [memberA, memberB] = [heat.addMember(), heat.addMember()];
    await registerMember(memberA!, 'render-a');
    await registerMember(memberB!, 'render-b');
    heat.removeMember(memberA!);
    await eventually(async () => expect(memberA!.deleted).toBe(true), 5000);
    expect(heat.signalsTo(memberA!)).toHaveLength(1);
    expect(await nodeState('render-a')).toBe('gone');
    await settle(50);
  });
});

describe('heat hooks: Keystone', () => {
  async function setupWithKeystone() {
    heat = new HeatDouble({ projectId: 'p-vca' });
    await heat.start();
    heatStarted = true;
    keystone = new KeystoneDouble();
    await keystone.start();
    heat.tokens = (token) => keystone!.serviceTokens.has(token);
    return setup(
      {},
      {
        openstack: {
          keystone: {
            url: keystone.url,
            applicationCredentialId: 'app-cred-id',
            applicationCredentialSecret: 'app-cred-secret-value',
            timeoutSeconds: 1,
          },
          heat: {
            url: heat.url,
            stackId: heat.root.id,
            stackName: heat.root.name,
            projectId: heat.projectId,
            pollSeconds: 3600,
            drainDeadlineSeconds,
          },
        },
      },
    );
  }

  it('a revoked token is renewed once (401, new token, retry); Keystone down: the poll fails and nothing changes', async () => {
    await setupWithKeystone();
    const [memberA, memberB] = [heat.addMember(), heat.addMember()];
    await registerMember(memberA!, 'render-a');
    await registerMember(memberB!, 'render-b');
    expect(await poll()).toMatchObject({ errors: 0 });
    expect(keystone!.callsTo('POST', '/v3/auth/tokens')).toHaveLength(1);

    keystone!.revokeServiceTokens();
    heat.removeMember(memberA!);
    expect(await poll()).toMatchObject({ paused: 1, released: 1, errors: 0 });
    expect(keystone!.callsTo('POST', '/v3/auth/tokens')).toHaveLength(2);
    expect(heat.calls.map((call) => call.status)).toEqual([200, 401, 200, 200]);
    expect(memberA!.deleted).toBe(true);

    // Keystone goes away and the token is refused: the retry cannot authenticate; nothing is drained.
    keystone!.revokeServiceTokens();
    await keystone!.stop();
    heat.removeMember(memberB!);
    const gamer = await connect();
    gamer.send({ type: 'request', ...halfL4 });
    expect((await gamer.next('assigned')).node.id).toBe('render-b');
    expect(await poll()).toMatchObject({ paused: 0, errors: 1 });
    expect(await nodeState('render-b')).toBe('ready');
    expect(memberB!.hookSet).toBe(true);
  });
});

describe('heat hooks: a real restart on the Redis store', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  }, 30_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('the gateway stops while a hook is pending; a new one on the same Redis finds it in Heat and honours it', async () => {
    const store = { kind: 'redis', redis: { url: redis.url, keyPrefix: `heat-restart-${Date.now()}` } };
    await setup({}, { store });
    const [memberA, memberB] = [heat.addMember(), heat.addMember()];
    await registerMember(memberA!, 'render-a');
    const rest = await gw!.request('gamer', 'POST', '/v1/sessions', halfL4);
    expect(rest.body.node.id).toBe('render-a');
    const nodeB = await registerMember(memberB!, 'render-b');
    heat.removeMember(memberA!);
    expect(await poll()).toMatchObject({ paused: 1, released: 0 });
    const drained = (await gw!.request('operator', 'GET', '/v1/nodes/render-a')).body;
    expect(drained.state).toBe('draining');

    await gw!.close(); // gives the lead up; the drain and the session stay in Redis
    gw = undefined;
    heatStarted = true; // the same Heat double, still holding the pause
    await setup({}, { store });
    const listingsBefore = heat.calls.length;
    expect(await poll()).toMatchObject({ leader: true, paused: 1, released: 0, errors: 0 });
    expect(heat.calls.length).toBe(listingsBefore + 1);
    const still = (await gw!.request('operator', 'GET', '/v1/nodes/render-a')).body;
    expect(still).toMatchObject({ state: 'draining', drainDeadline: drained.drainDeadline, sessions: 1 });

    expect(heat.signalsTo(memberA!)).toHaveLength(0);

    // The deadline passes on the new instance: the session migrates, then the hook is cleared once.
    gw!.clock.current = drained.drainDeadline + 1000;
    await reportIdle(gw!, nodeB); // the node token is derived from the shared master secret
    expect(await poll()).toMatchObject({ paused: 1, released: 1, errors: 0 });
    const moved = await getSession(gw!, rest.body.sessionId);
    expect(moved).toMatchObject({ state: 'assigned', migrations: 1, node: { id: 'render-b' } });
    expect(heat.signalsTo(memberA!).map((call) => call.status)).toEqual([200]);
    expect(memberA!.deleted).toBe(true);
    expect(await poll()).toMatchObject({ paused: 0, released: 0 });
    expect(heat.signalsTo(memberA!)).toHaveLength(1);
  }, 60_000);
});
