import { afterEach, describe, expect, it } from 'vitest';
import { verifyTicket } from '../../src/tickets/index.js';
import { idleTelemetry, PlayClient, startTestGateway, type TestGateway } from '../support/gateway.js';

let gw: TestGateway;
afterEach(async () => gw?.close());

describe('gateway: first session', () => {
  it('registers a node by webhook, takes its telemetry, and assigns a REST session with a ticket the node verifies', async () => {
    gw = await startTestGateway();
    const node = await gw.registerNode('render-1', 'L4');
    expect((await gw.telemetry('render-1', node.token, idleTelemetry(1))).status).toBe(200);
    const created = await gw.request('gamer', 'POST', '/v1/sessions', {
      game: 'unigine-heaven',
      resolution: '1080p',
      fps: 60,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ state: 'assigned', node: { id: 'render-1', port: 5900 }, gpu: 0 });
    const claims = verifyTicket(created.body.ticket, {
      nodeKey: Buffer.from(node.ticketKey, 'hex'),
      nodeId: 'render-1',
      now: gw.clock.now(),
    });
    expect(claims.sid).toBe(created.body.sessionId);
  });

  it('assigns over the WebSocket', async () => {
    gw = await startTestGateway();
    const node = await gw.registerNode('render-1', 'L4');
    await gw.telemetry('render-1', node.token, idleTelemetry(1));
    const client = await PlayClient.connect(gw.wsUrl);
    client.send({ type: 'request', game: 'unigine-heaven', resolution: '1080p', fps: 60 });
    const assigned = await client.next('assigned');
    expect(assigned).toMatchObject({ node: { id: 'render-1' }, gpu: 0 });
    expect(typeof assigned.resumeToken).toBe('string');
    await client.close();
  });
});
