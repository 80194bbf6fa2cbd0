import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import {
  advance,
  claimsOf,
  eventually,
  expectLedgerBalanced,
  expectProblem,
  getNode,
  getSession,
  halfL4,
  readyNode,
  reportIdle,
  wholeL4,
} from './gamer-flow.js';

let gw: TestGateway;
afterEach(async () => gw?.close());

describe('gamer REST: assignment', () => {
  it('answers 201 with the node endpoint, GPU, a ticket the node verifies, the lease and a Location', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const created = await gw.request('gamer', 'POST', '/v1/sessions', halfL4);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      state: 'assigned',
      node: { id: 'render-1', host: '127.0.0.1', port: 5900, protocol: 'webrtc' },
      gpu: 0,
      gpuModel: 'L4',
      leaseSeconds: 30,
    });
    const sessionId: string = created.body.sessionId;
    expect(created.headers.get('location')).toBe(`/v1/sessions/${sessionId}`);
    const claims = claimsOf(created.body.ticket, node, gw);
    expect(claims).toMatchObject({ sid: sessionId, node: 'render-1', gpu: 0, game: 'unigine-heaven' });
    expect(claims.exp).toBeGreaterThan(gw.clock.now() / 1000);

    const read = await gw.request('gamer', 'GET', created.headers.get('location')!);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ sessionId, state: 'assigned', node: { id: 'render-1' }, gpu: 0 });
    expect(claimsOf(read.body.ticket, node, gw).sid).toBe(sessionId);
    await expectLedgerBalanced(gw);
  });

  it('refuses an invalid body with 400 naming the field, and an unknown game with 422, changing nothing', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const badFps = await gw.request('gamer', 'POST', '/v1/sessions', { ...halfL4, fps: 'sixty' });
    expectProblem(badFps, 400, 'VCA_ERR_VALIDATION');
    expect(badFps.body.field).toBe('fps');
    const unknownGame = await gw.request('gamer', 'POST', '/v1/sessions', { ...halfL4, game: 'pong-2099' });
    expectProblem(unknownGame, 422, 'VCA_ERR_UNKNOWN_GAME');
    const cluster = await gw.request('operator', 'GET', '/v1/cluster');
    expect(cluster.body.sessions).toEqual({ assigned: 0, queued: 0 });
    await expectLedgerBalanced(gw);
  });
});

describe('gamer REST: queueing', () => {
  it('queues with 202 and a position when every GPU is full; the next in line gets position 2', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    expect((await gw.request('gamer', 'POST', '/v1/sessions', wholeL4)).status).toBe(201);
    const first = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ state: 'queued', queued: true, position: 1 });
    expect(first.headers.get('location')).toBe(`/v1/sessions/${first.body.sessionId}`);
    expect(first.body.ticket).toBeUndefined();
    const second = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    expect(second.status).toBe(202);
    expect(second.body).toMatchObject({ state: 'queued', position: 2 });
    expect((await getSession(gw, second.body.sessionId)).position).toBe(2);
    await expectLedgerBalanced(gw);
  });

  it('answers 503 with Retry-After and VCA_ERR_NO_CAPACITY when the caller asked not to wait', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    expect((await gw.request('gamer', 'POST', '/v1/sessions', wholeL4)).status).toBe(201);
    const refused = await gw.request('gamer', 'POST', '/v1/sessions', { ...wholeL4, wait: false });
    expectProblem(refused, 503, 'VCA_ERR_NO_CAPACITY');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const cluster = await gw.request('operator', 'GET', '/v1/cluster');
    expect(cluster.body.sessions).toEqual({ assigned: 1, queued: 0 });
    await expectLedgerBalanced(gw);
  });

  it('answers 503 VCA_ERR_QUEUE_FULL with Retry-After once the queue holds queue.maxLength sessions', async () => {
    gw = await startTestGateway({ queue: { maxLength: 1 } });
    await readyNode(gw, 'render-1');
    expect((await gw.request('gamer', 'POST', '/v1/sessions', wholeL4)).status).toBe(201);
    expect((await gw.request('gamer', 'POST', '/v1/sessions', wholeL4)).status).toBe(202);
    const refused = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    expectProblem(refused, 503, 'VCA_ERR_QUEUE_FULL');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const cluster = await gw.request('operator', 'GET', '/v1/cluster');
    expect(cluster.body.sessions).toEqual({ assigned: 1, queued: 1 });
    await expectLedgerBalanced(gw);
  });

  it('promotes a queued session when a new node registers and reports telemetry', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    expect((await gw.request('gamer', 'POST', '/v1/sessions', wholeL4)).status).toBe(201);
    const queued = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    expect(queued.status).toBe(202);
    const registered = await gw.registerNode('render-2', 'L4');
    // Registered but silent: not placeable until its first telemetry.
    await gw.tick();
    expect((await getSession(gw, queued.body.sessionId)).state).toBe('queued');
    const newcomer = { id: 'render-2', gpuCount: 1, ...registered };
    await reportIdle(gw, newcomer);
    const assigned = await eventually(async () => {
      const session = await getSession(gw, queued.body.sessionId);
      expect(session.state).toBe('assigned');
      return session;
    });
    expect(assigned).toMatchObject({ node: { id: 'render-2' }, gpu: 0 });
    expect(claimsOf(assigned.ticket, newcomer, gw).sid).toBe(queued.body.sessionId);
    await expectLedgerBalanced(gw);
  });

  it('promotes queued sessions in FIFO order as sessions end', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const running = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    const queuedIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const queued = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
      expect(queued.body.position).toBe(i + 1);
      queuedIds.push(queued.body.sessionId);
    }
    const [first, second, third] = queuedIds as [string, string, string];

    expect((await gw.request('gamer', 'DELETE', `/v1/sessions/${running.body.sessionId}`)).status).toBe(200);
    const promoted = await eventually(async () => {
      const session = await getSession(gw, first);
      expect(session.state).toBe('assigned');
      return session;
    });
    expect(claimsOf(promoted.ticket, node, gw).sid).toBe(first);
    expect(await getSession(gw, second)).toMatchObject({ state: 'queued', position: 1 });
    expect(await getSession(gw, third)).toMatchObject({ state: 'queued', position: 2 });

    expect((await gw.request('gamer', 'DELETE', `/v1/sessions/${first}`)).status).toBe(200);
    await eventually(async () => expect((await getSession(gw, second)).state).toBe('assigned'));
    expect(await getSession(gw, third)).toMatchObject({ state: 'queued', position: 1 });
    await expectLedgerBalanced(gw);
  });

  it('capacity freed by a release goes to the queued session, not to a newcomer arriving with the release', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    for (let round = 0; round < 10; round++) {
      const running = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
      const queued = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
      expect([running.status, queued.status]).toEqual([201, 202]);
      const [released, newcomer] = await Promise.all([
        gw.request('gamer', 'DELETE', `/v1/sessions/${running.body.sessionId}`),
        gw.request('gamer', 'POST', '/v1/sessions', wholeL4),
      ]);
      expect(released.status).toBe(200);
      expect(newcomer.status, `round ${round}: the newcomer jumped the queue`).toBe(202);
      expect((await getSession(gw, queued.body.sessionId)).state).toBe('assigned');
      for (const id of [queued.body.sessionId, newcomer.body.sessionId]) {
        expect((await gw.request('gamer', 'DELETE', `/v1/sessions/${id}`)).status).toBe(200);
      }
    }
    await expectLedgerBalanced(gw);
  });
});

describe('gamer REST: leases', () => {
  it('a heartbeat renews the lease: alive past the original lease, ended after the renewed one', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const created = await gw.request('gamer', 'POST', '/v1/sessions', halfL4);
    const id: string = created.body.sessionId;

    await advance(gw, 20);
    const beat = await gw.request('gamer', 'POST', `/v1/sessions/${id}/heartbeat`);
    expect(beat.status).toBe(200);
    expect(beat.body).toMatchObject({ sessionId: id, state: 'assigned', leaseSeconds: 30 });

    await advance(gw, 15); // 35 s after creation: past the first lease, inside the renewed one
    await reportIdle(gw, node);
    await gw.tick();
    expect(await getSession(gw, id)).toMatchObject({ state: 'assigned', leaseSeconds: 15 });

    await advance(gw, 16); // 51 s: the renewed lease (50 s) is over
    await gw.tick();
    expect(await getSession(gw, id)).toMatchObject({ state: 'ended', endReason: 'lease-expired' });
    await expectLedgerBalanced(gw);
  });

  it('a session without heartbeats ends with lease-expired and its capacity is freed', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const created = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    const id: string = created.body.sessionId;
    expect((await getNode(gw, 'render-1')).gpus[0].committed.gpu).toBeGreaterThan(0);

    await advance(gw, 29);
    await gw.tick();
    expect((await getSession(gw, id)).state).toBe('assigned');

    await advance(gw, 2);
    await gw.tick();
    expect(await getSession(gw, id)).toMatchObject({ state: 'ended', endReason: 'lease-expired' });
    const freed = await getNode(gw, 'render-1');
    expect(freed.gpus[0].committed).toEqual({ gpu: 0, encoder: 0, vramMiB: 0, encoderSessions: 0 });
    expect(freed.sessionIds).toEqual([]);

    // The freed GPU takes the next session (after fresh telemetry: the old one went stale meanwhile).
    await reportIdle(gw, node);
    expect((await gw.request('gamer', 'POST', '/v1/sessions', wholeL4)).status).toBe(201);
    await expectLedgerBalanced(gw);
  });

  it('a queued session keeps its place by heartbeats and leaves the queue when they stop', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const running = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    const queued = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    await advance(gw, 20);
    for (const id of [running.body.sessionId, queued.body.sessionId]) {
      const beat = await gw.request('gamer', 'POST', `/v1/sessions/${id}/heartbeat`);
      expect(beat.status).toBe(200);
    }
    expect(
      (await gw.request('gamer', 'POST', `/v1/sessions/${queued.body.sessionId}/heartbeat`)).body,
    ).toMatchObject({ state: 'queued', position: 1 });
    await advance(gw, 20);
    await gw.tick();
    expect((await getSession(gw, queued.body.sessionId)).state).toBe('queued');
    await advance(gw, 11);
    await gw.tick();
    expect(await getSession(gw, queued.body.sessionId)).toMatchObject({
      state: 'ended',
      endReason: 'lease-expired',
    });
    const cluster = await gw.request('operator', 'GET', '/v1/cluster');
    expect(cluster.body.sessions.queued).toBe(0);
    await expectLedgerBalanced(gw);
  });
});

describe('gamer REST: ending', () => {
  it('DELETE ends a session exactly once: a second DELETE is 410, an unknown id 404', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const created = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    const id: string = created.body.sessionId;

    const ended = await gw.request('gamer', 'DELETE', `/v1/sessions/${id}`);
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ sessionId: id, state: 'ended', endReason: 'released' });
    expect((await getNode(gw, 'render-1')).gpus[0].committed.gpu).toBe(0);

    expectProblem(await gw.request('gamer', 'DELETE', `/v1/sessions/${id}`), 410, 'VCA_ERR_SESSION_ENDED');
    expectProblem(
      await gw.request('gamer', 'DELETE', '/v1/sessions/no-such-session'),
      404,
      'VCA_ERR_SESSION_NOT_FOUND',
    );
    expect(await getSession(gw, id)).toMatchObject({ state: 'ended', endReason: 'released' });
    const cluster = await gw.request('operator', 'GET', '/v1/cluster');
    expect(cluster.body.sessions).toEqual({ assigned: 0, queued: 0 });
    await expectLedgerBalanced(gw);
  });

  it('a heartbeat on an ended session is 410, on an unknown one 404', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const created = await gw.request('gamer', 'POST', '/v1/sessions', halfL4);
    const id: string = created.body.sessionId;
    await gw.request('gamer', 'DELETE', `/v1/sessions/${id}`);
    const beat = await gw.request('gamer', 'POST', `/v1/sessions/${id}/heartbeat`);
    expectProblem(beat, 410, 'VCA_ERR_SESSION_ENDED');
    expect(beat.body.endReason).toBe('released');
    expectProblem(
      await gw.request('gamer', 'POST', '/v1/sessions/no-such-session/heartbeat'),
      404,
      'VCA_ERR_SESSION_NOT_FOUND',
    );
    await expectLedgerBalanced(gw);
  });

  it('a node reporting the session ended ends it once; a second report is idempotent', async () => {
    gw = await startTestGateway();
    const node = await readyNode(gw, 'render-1');
    const created = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    const id: string = created.body.sessionId;
    const path = `/v1/nodes/render-1/sessions/${id}/ended`;

    const first = await gw.request({ token: node.token }, 'POST', path);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ sessionId: id, ended: true, alreadyEnded: false });
    expect(await getSession(gw, id)).toMatchObject({ state: 'ended', endReason: 'node-reported-ended' });
    expect((await getNode(gw, 'render-1')).gpus[0].committed.gpu).toBe(0);

    const second = await gw.request({ token: node.token }, 'POST', path);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ sessionId: id, ended: true, alreadyEnded: true });
    expect(await getSession(gw, id)).toMatchObject({ state: 'ended', endReason: 'node-reported-ended' });
    await expectLedgerBalanced(gw);
  });

  it('a node reporting a session that runs on another node gets 409 and the session runs on', async () => {
    gw = await startTestGateway();
    await readyNode(gw, 'render-1');
    const created = await gw.request('gamer', 'POST', '/v1/sessions', halfL4);
    const id: string = created.body.sessionId;
    const other = await readyNode(gw, 'render-2');

    const report = await gw.request(
      { token: other.token },
      'POST',
      `/v1/nodes/render-2/sessions/${id}/ended`,
    );
    expectProblem(report, 409, 'VCA_ERR_NODE_STATE');
    // Nor can it report under the other node's id with its own token.
    const impersonated = await gw.request(
      { token: other.token },
      'POST',
      `/v1/nodes/render-1/sessions/${id}/ended`,
    );
    expectProblem(impersonated, 401, 'VCA_ERR_UNAUTHORIZED');
    expect((await getSession(gw, id)).state).toBe('assigned');
    await expectLedgerBalanced(gw);
  });
});

describe('gamer REST: catalog and roles', () => {
  it('GET /v1/catalog lists the titles with their resolutions and frame rates', async () => {
    gw = await startTestGateway();
    const catalog = await gw.request('gamer', 'GET', '/v1/catalog');
    expect(catalog.status).toBe(200);
    expect(catalog.body.referenceGpu).toBe('L4');
    const heaven = catalog.body.games.find((game: { id: string }) => game.id === 'unigine-heaven');
    expect(heaven).toMatchObject({ title: 'Unigine Heaven 4.0', fps: [30, 60] });
    expect(heaven.resolutions).toContain('1920x1080');
    expect(catalog.body.games.length).toBeGreaterThan(3);
  });

  it('gamer routes refuse a missing token (401) and an operator token (403)', async () => {
    gw = await startTestGateway();
    expectProblem(await gw.request('none', 'GET', '/v1/catalog'), 401, 'VCA_ERR_UNAUTHORIZED');
    expectProblem(await gw.request('operator', 'POST', '/v1/sessions', halfL4), 403, 'VCA_ERR_FORBIDDEN');
  });
});
