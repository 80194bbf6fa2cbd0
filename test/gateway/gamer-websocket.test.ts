import { afterEach, describe, expect, it } from 'vitest';
import { PlayClient, startTestGateway, type TestGateway, testCredentials } from '../support/gateway.js';
import {
  advance,
  claimsOf,
  eventually,
  expectLedgerBalanced,
  getNode,
  getSession,
  halfL4,
  readyNode,
  reportIdle,
  settle,
  wholeL4,
} from './gamer-flow.js';

let gw: TestGateway;
const clients: PlayClient[] = [];

async function connect(token?: string): Promise<PlayClient> {
  const client = await PlayClient.connect(gw.wsUrl, token);
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await gw?.close();
});

/** Asserts that no message of `type` arrives within `ms`. */
async function expectNoMessage(client: PlayClient, type: string, ms = 150): Promise<void> {
  await expect(client.next(type, ms)).rejects.toThrow(/no ".*" message/);
}

describe('gamer WebSocket: request', () => {
  it('a request is answered assigned with the node, GPU, a verifiable ticket and a resume token', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const client = await connect();
    client.send({ type: 'request', ...halfL4 });
    const assigned = await client.next('assigned');
    expect(assigned).toMatchObject({
      state: 'assigned',
      node: { id: 'render-1', host: '127.0.0.1', port: 5900, protocol: 'webrtc' },
      gpu: 0,
      leaseSeconds: 20,
    });
    expect(typeof assigned.resumeToken).toBe('string');
    expect(claimsOf(assigned.ticket, node, gw)).toMatchObject({ sid: assigned.sessionId, node: 'render-1' });
    await expectLedgerBalanced(gw);
  });

  it('when full: queued with a position, position updates as others leave the queue, then assigned', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const playing = await connect();
    playing.send({ type: 'request', ...wholeL4 });
    await playing.next('assigned');

    const waiters = [await connect(), await connect(), await connect()];
    for (const [index, waiter] of waiters.entries()) {
      waiter.send({ type: 'request', ...wholeL4 });
      const queued = await waiter.next('queued');
      expect(queued).toMatchObject({ position: index + 1 });
      expect(typeof queued.resumeToken).toBe('string');
    }
    const [first, second, third] = waiters as [PlayClient, PlayClient, PlayClient];

    // The first in line gives up: the others move up.
    first.send({ type: 'end' });
    expect(await first.next('ended')).toMatchObject({ reason: 'cancelled' });
    expect(await second.next('queued')).toMatchObject({ position: 1 });
    expect(await third.next('queued')).toMatchObject({ position: 2 });

    // Capacity appears: the head of the queue is assigned, the next moves up.
    playing.send({ type: 'end' });
    await playing.next('ended');
    expect(await second.next('assigned')).toMatchObject({ node: { id: 'render-1' }, gpu: 0 });
    expect(await third.next('queued')).toMatchObject({ position: 1 });

    const other = await readyNode(gw, 'render-2');
    const assigned = await third.next('assigned');
    expect(assigned).toMatchObject({ node: { id: 'render-2' } });
    expect(claimsOf(assigned.ticket, other, gw).sid).toBe(assigned.sessionId);
    await expectLedgerBalanced(gw);
  });

  it('a second request on the same socket is VCA_ERR_SESSION_EXISTS and the socket stays usable', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const client = await connect();
    client.send({ type: 'request', ...halfL4 });
    const first = await client.next('assigned');
    client.send({ type: 'request', ...halfL4 });
    expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_SESSION_EXISTS' });
    expect((await getNode(gw, 'render-1')).sessionIds).toEqual([first.sessionId]);

    client.send({ type: 'end' });
    expect(await client.next('ended')).toMatchObject({ sessionId: first.sessionId });
    client.send({ type: 'request', ...halfL4 });
    const second = await client.next('assigned');
    expect(second.sessionId).not.toBe(first.sessionId);
    await expectLedgerBalanced(gw);
  });

  it('refuses a wait:false request when full with VCA_ERR_NO_CAPACITY and holds nothing', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const playing = await connect();
    playing.send({ type: 'request', ...wholeL4 });
    await playing.next('assigned');
    const refused = await connect();
    refused.send({ type: 'request', ...wholeL4, wait: false });
    expect(await refused.next('error')).toMatchObject({ code: 'VCA_ERR_NO_CAPACITY' });
    expect(gw.gateway.play.attached).toBe(1);
    await expectLedgerBalanced(gw);
  });
});

describe('gamer WebSocket: end and leases', () => {
  it('end answers ended and frees the capacity', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const client = await connect();
    client.send({ type: 'request', ...wholeL4 });
    const assigned = await client.next('assigned');
    client.send({ type: 'end' });
    expect(await client.next('ended')).toMatchObject({ sessionId: assigned.sessionId, reason: 'released' });
    const node = await getNode(gw, 'render-1');
    expect(node.gpus[0].committed).toEqual({ gpu: 0, encoder: 0, vramMiB: 0, encoderSessions: 0 });
    expect(await getSession(gw, assigned.sessionId)).toMatchObject({ state: 'ended', endReason: 'released' });
    // Nothing left to end on this socket.
    client.send({ type: 'end' });
    expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_SESSION_NOT_FOUND' });
    await expectLedgerBalanced(gw);
  });

  it('an open socket keeps its session alive well past the resume grace', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const client = await connect();
    client.send({ type: 'request', ...halfL4 });
    const assigned = await client.next('assigned');
    for (let step = 0; step < 4; step++) {
      await advance(gw, 15, { renewWebsocket: true });
      await gw.tick();
    }
    expect((await getSession(gw, assigned.sessionId)).state).toBe('assigned');
    await expectNoMessage(client, 'ended', 50);
    await expectLedgerBalanced(gw);
  });

  it('closing the socket does not end the session: resume within the grace re-assigns it with a fresh ticket', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const first = await connect();
    first.send({ type: 'request', ...halfL4 });
    const assigned = await first.next('assigned');
    await first.close();
    await eventually(async () => expect(gw.gateway.play.attached).toBe(0));

    await advance(gw, 10, { renewWebsocket: true });
    await gw.tick();
    expect((await getSession(gw, assigned.sessionId)).state).toBe('assigned');

    const second = await connect();
    second.send({ type: 'resume', sessionId: assigned.sessionId, resumeToken: assigned.resumeToken });
    const resumed = await second.next('assigned');
    expect(resumed).toMatchObject({
      sessionId: assigned.sessionId,
      node: { id: 'render-1' },
      gpu: assigned.gpu,
    });
    expect(resumed.ticket).not.toBe(assigned.ticket);
    const claims = claimsOf(resumed.ticket, node, gw);
    expect(claims.sid).toBe(assigned.sessionId);
    expect(claims.iat).toBeGreaterThan(claimsOf(assigned.ticket, node, gw).iat);

    // The resumed socket keeps the lease: past the first grace, the session still runs.
    await advance(gw, 15, { renewWebsocket: true });
    await reportIdle(gw, node);
    await gw.tick();
    expect((await getSession(gw, assigned.sessionId)).state).toBe('assigned');
    expect((await getNode(gw, 'render-1')).sessionIds).toEqual([assigned.sessionId]);
    await expectLedgerBalanced(gw);
  });

  it('resume with a wrong token is VCA_ERR_UNAUTHORIZED and the session is untouched', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const first = await connect();
    first.send({ type: 'request', ...halfL4 });
    const assigned = await first.next('assigned');
    await first.close();

    const intruder = await connect();
    intruder.send({ type: 'resume', sessionId: assigned.sessionId, resumeToken: 'not-the-resume-token' });
    expect(await intruder.next('error')).toMatchObject({ code: 'VCA_ERR_UNAUTHORIZED' });
    expect(gw.gateway.play.attached).toBe(0);
    // The right token still works.
    intruder.send({ type: 'resume', sessionId: assigned.sessionId, resumeToken: assigned.resumeToken });
    expect(await intruder.next('assigned')).toMatchObject({ sessionId: assigned.sessionId });
    await expectLedgerBalanced(gw);
  });

  it('after the resume grace the session ends with lease-expired and resume is VCA_ERR_SESSION_ENDED', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const first = await connect();
    first.send({ type: 'request', ...wholeL4 });
    const assigned = await first.next('assigned');
    await first.close();
    await eventually(async () => expect(gw.gateway.play.attached).toBe(0));

    await advance(gw, 21, { renewWebsocket: true });
    await gw.tick();
    expect(await getSession(gw, assigned.sessionId)).toMatchObject({
      state: 'ended',
      endReason: 'lease-expired',
    });
    expect((await getNode(gw, 'render-1')).gpus[0].committed.gpu).toBe(0);

    const late = await connect();
    late.send({ type: 'resume', sessionId: assigned.sessionId, resumeToken: assigned.resumeToken });
    expect(await late.next('error')).toMatchObject({ code: 'VCA_ERR_SESSION_ENDED' });
    await expectLedgerBalanced(gw);
  });

  it('resume on a second socket while the first is open closes the first with 4001', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const first = await connect();
    first.send({ type: 'request', ...halfL4 });
    const assigned = await first.next('assigned');

    const second = await connect();
    second.send({ type: 'resume', sessionId: assigned.sessionId, resumeToken: assigned.resumeToken });
    expect(await second.next('assigned')).toMatchObject({ sessionId: assigned.sessionId });
    await eventually(async () => expect(first.closedWith).toBe(4001));
    expect(gw.gateway.play.attachedSessionIds()).toEqual([assigned.sessionId]);

    // The session now follows the second socket.
    second.send({ type: 'end' });
    expect(await second.next('ended')).toMatchObject({ sessionId: assigned.sessionId });
    await expectLedgerBalanced(gw);
  });
});

describe('gamer WebSocket: node events', () => {
  it('at the drain deadline the client is told to migrate and is assigned on another node; the drained node is removed', async () => {
    gw = await startTestGateway();
    const nodeA = await readyNode(gw, 'render-a');
    const client = await connect();
    client.send({ type: 'request', ...halfL4 });
    const assigned = await client.next('assigned');
    expect(assigned.node.id).toBe('render-a');
    const nodeB = await readyNode(gw, 'render-b');

    const drain = await gw.request('operator', 'POST', '/v1/nodes/render-a/drain', { deadlineSeconds: 30 });
    expect(drain.status).toBe(200);
    expect(drain.body.state).toBe('draining');

    // Before the deadline the session stays where it is.
    await advance(gw, 20, { renewWebsocket: true });
    await reportIdle(gw, nodeA, nodeB);
    await gw.tick();
    await expectNoMessage(client, 'migrate');
    expect((await getNode(gw, 'render-a')).state).toBe('draining');

    // Keep render-b's telemetry fresh across the deadline, so a periodic tick at any moment sees it eligible.
    await advance(gw, 6, { renewWebsocket: true });
    await reportIdle(gw, nodeB);
    await advance(gw, 5, { renewWebsocket: true });
    await gw.tick();
    const migrate = await client.next('*');
    expect(migrate).toMatchObject({
      type: 'migrate',
      sessionId: assigned.sessionId,
      from: { nodeId: 'render-a', gpu: 0 },
    });
    const moved = await client.next('*');
    expect(moved).toMatchObject({
      type: 'assigned',
      sessionId: assigned.sessionId,
      node: { id: 'render-b' },
      migrations: 1,
    });
    expect(claimsOf(moved.ticket, nodeB, gw).node).toBe('render-b');

    expect((await gw.request('operator', 'GET', '/v1/nodes/render-a')).status).toBe(404);
    expect((await getNode(gw, 'render-b')).sessionIds).toEqual([assigned.sessionId]);
    await expectLedgerBalanced(gw);
  });

  it('a migrating session with nowhere to go waits at the front of the queue, then is assigned', async () => {
    gw = await startTestGateway();
    const nodeA = await readyNode(gw, 'render-a');
    const client = await connect();
    client.send({ type: 'request', ...wholeL4 });
    expect((await client.next('assigned')).node.id).toBe('render-a');
    const nodeB = await readyNode(gw, 'render-b');
    const occupant = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    expect(occupant.body.node.id).toBe('render-b');
    const waiting = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    expect(waiting.body.position).toBe(1);

    await gw.request('operator', 'POST', '/v1/nodes/render-a/drain', { deadlineSeconds: 30 });
    await advance(gw, 26, { renewWebsocket: true });
    await reportIdle(gw, nodeA, nodeB);
    for (const id of [occupant.body.sessionId, waiting.body.sessionId]) {
      await gw.request('gamer', 'POST', `/v1/sessions/${id}/heartbeat`);
    }
    await advance(gw, 5, { renewWebsocket: true });
    await gw.tick();
    expect(await client.next('*')).toMatchObject({ type: 'migrate', from: { nodeId: 'render-a' } });
    expect(await client.next('*')).toMatchObject({ type: 'queued', position: 1 });
    expect((await getSession(gw, waiting.body.sessionId)).position).toBe(2);
    expect((await gw.request('operator', 'GET', '/v1/nodes/render-a')).status).toBe(404);

    await gw.request('gamer', 'DELETE', `/v1/sessions/${occupant.body.sessionId}`);
    expect(await client.next('assigned')).toMatchObject({ node: { id: 'render-b' }, migrations: 1 });
    expect((await getSession(gw, waiting.body.sessionId)).position).toBe(1);
    await expectLedgerBalanced(gw);
  });

  it('a node-reported end reaches the client as ended with reason node-reported-ended', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const client = await connect();
    client.send({ type: 'request', ...halfL4 });
    const assigned = await client.next('assigned');
    const report = await gw.request(
      { token: node.token },
      'POST',
      `/v1/nodes/render-1/sessions/${assigned.sessionId}/ended`,
    );
    expect(report.status).toBe(200);
    expect(await client.next('ended')).toMatchObject({
      sessionId: assigned.sessionId,
      reason: 'node-reported-ended',
    });
    expect(gw.gateway.play.attached).toBe(0);
    await expectLedgerBalanced(gw);
  });
});

describe('gamer WebSocket: validation and access', () => {
  it('invalid messages are answered VCA_ERR_VALIDATION naming the field, and change nothing', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const client = await connect();
    const cases: Array<[unknown, string]> = [
      [{ type: 'dance' }, 'type'],
      [{ game: 'unigine-heaven' }, 'type'],
      [{ type: 'request', game: 'unigine-heaven', fps: 60 }, 'resolution'],
      [{ type: 'request', ...halfL4, fps: 'sixty' }, 'fps'],
      [{ type: 'request', ...halfL4, speed: 'ludicrous' }, 'speed'],
      [{ type: 'resume', resumeToken: 'x' }, 'sessionId'],
    ];
    for (const [message, field] of cases) {
      client.send(message);
      const error = await client.next('error');
      expect(error, JSON.stringify(message)).toMatchObject({ code: 'VCA_ERR_VALIDATION', field });
    }
    client.socket.send('{not json');
    expect(await client.next('error')).toMatchObject({ code: 'VCA_ERR_MALFORMED_JSON' });
    expect((await getNode(gw, 'render-1')).sessions).toBe(0);

    client.send({ type: 'request', ...halfL4 });
    expect(await client.next('assigned')).toMatchObject({ node: { id: 'render-1' } });
    await expectLedgerBalanced(gw);
  });

  it('refuses the upgrade without a gamer token: none or unknown 401, operator 403', async () => {
    gw = await startTestGateway();
    await expect(PlayClient.connect(gw.wsUrl, '')).rejects.toThrow(/upgrade refused: 401/);
    await expect(PlayClient.connect(gw.wsUrl, 'not-a-token-0123456789')).rejects.toThrow(
      /upgrade refused: 401/,
    );
    await expect(PlayClient.connect(gw.wsUrl, testCredentials.operatorToken)).rejects.toThrow(
      /upgrade refused: 403/,
    );
    await settle();
    expect(gw.gateway.play.attached).toBe(0);
  });
});
