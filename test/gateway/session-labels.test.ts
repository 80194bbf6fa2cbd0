/**
 * Session labels follow the rules of node labels (one schema, src/hooks/schemas.ts): a label no node
 * could carry is a 400 naming the field, on POST /v1/sessions and on the play socket's `request`,
 * and changes nothing — it never reaches placement to wait in the queue forever.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, fleetSnapshot } from '../support/fleet-snapshot.js';
import { idleTelemetry, PlayClient, startTestGateway, type TestGateway } from '../support/gateway.js';

let gw: TestGateway;

const validSession = { game: 'unigine-heaven', resolution: '1080p', fps: 60 };

const badLabels: Array<[string, Record<string, string>, string | RegExp]> = [
  ['a name with a space and "!"', { 'bad key!': 'x' }, 'labels.bad key!'],
  ['an empty name', { '': 'x' }, 'labels'],
  ['a name of 64 characters', { ['k'.repeat(64)]: 'x' }, `labels.${'k'.repeat(64)}`],
  ['a name with a colon', { 'zone:a': 'x' }, 'labels.zone:a'],
  ['a value of 257 characters', { tier: 'v'.repeat(257) }, 'labels.tier'],
  ['33 labels', Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])), 'labels'],
];

beforeAll(async () => {
  gw = await startTestGateway();
  const node = await gw.registerNode('render-1', 'L4', 2, { region: 'eu-west', 'gpu.class/tier': 'gold' });
  expect((await gw.telemetry('render-1', node.token, idleTelemetry(2))).status).toBe(200);
});
afterAll(async () => gw?.close());

describe('session labels: validated like node labels', () => {
  it.each(badLabels)(
    'POST /v1/sessions with %s: 400 naming the field, nothing changes',
    async (_name, labels, field) => {
      const before = await fleetSnapshot(gw);
      const response = await gw.request('gamer', 'POST', '/v1/sessions', { ...validSession, labels });
      expectProblem(response, 400, 'VCA_ERR_VALIDATION', field);
      expect(await fleetSnapshot(gw)).toEqual(before);
    },
  );

  it('the play socket answers the same labels with a validation error and keeps the socket', async () => {
    const before = await fleetSnapshot(gw);
    const client = await PlayClient.connect(gw.wsUrl);
    try {
      for (const [, labels, field] of badLabels) {
        client.send({ type: 'request', ...validSession, labels });
        const error = await client.next('error');
        expect(error.code).toBe('VCA_ERR_VALIDATION');
        if (typeof field === 'string') expect(error.field).toBe(field);
      }
      expect(client.closedWith).toBeNull();
      expect(await fleetSnapshot(gw)).toEqual(before);
    } finally {
      await client.close();
    }
  });

  it('labels a node can carry place the session as before', async () => {
    const response = await gw.request('gamer', 'POST', '/v1/sessions', {
      ...validSession,
      labels: { region: 'eu-west', 'gpu.class/tier': 'gold' },
      wait: false,
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(response.body.node.id).toBe('render-1');
    expect((await gw.request('gamer', 'DELETE', `/v1/sessions/${response.body.sessionId}`)).status).toBe(200);
  });

  it('a node registered with a label name outside the rules is refused the same way', async () => {
    const answer = await gw.hook('contextualize', {
      eventId: 'bad-node-label',
      event: 'scale-up',
      group: 'g',
      nodes: [
        {
          id: 'render-9',
          host: '127.0.0.1',
          port: 5900,
          protocol: 'webrtc',
          gpus: [{ model: 'L4', count: 1 }],
          labels: { 'bad key!': 'x' },
        },
      ],
    });
    expectProblem(answer, 400, 'VCA_ERR_VALIDATION', /^nodes\.0\.labels/);
    expect((await gw.request('operator', 'GET', '/v1/nodes/render-9')).status).toBe(404);
  });
});
