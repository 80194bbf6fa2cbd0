import { afterEach, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { readyNode, wholeL4, getSession } from './gamer-flow.js';
let gw: TestGateway;
afterEach(async () => gw?.close());
it('debug fifo race', async () => {
  gw = await startTestGateway();
  await readyNode(gw, 'render-1');
  let jumped = 0;
  for (let i = 0; i < 30; i++) {
    const s0 = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    const q = await gw.request('gamer', 'POST', '/v1/sessions', wholeL4);
    const [, late] = await Promise.all([
      gw.request('gamer', 'DELETE', `/v1/sessions/${s0.body.sessionId}`),
      gw.request('gamer', 'POST', '/v1/sessions', wholeL4),
    ]);
    if (late.status === 201) jumped++;
    for (const id of [q.body.sessionId, late.body.sessionId]) await gw.request('gamer', 'DELETE', `/v1/sessions/${id}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  console.log('JUMPED', jumped, 'of 30');
});
