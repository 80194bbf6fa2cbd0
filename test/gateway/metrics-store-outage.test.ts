/**
 * /metrics while the store is down: the scrape still answers (runtime series, HTTP error counters) and
 * says so with vca_store_up 0, instead of failing whole and looking like a dead gateway.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

let redis: RedisServer | undefined;
let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
  await redis?.stop();
  redis = undefined;
});

function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('metrics during a store outage', () => {
  it('answers 200 with vca_store_up 0 while Redis is down, and 1 again once it is back', async () => {
    redis = await startRedisServer();
    gw = await startTestGateway({
      store: { kind: 'redis', redis: { url: redis.url, keyPrefix: `outage-${Date.now()}` } },
    });
    const up = await gw.request('operator', 'GET', '/metrics');
    expect(up.status).toBe(200);
    expect(sample(up.body, 'vca_store_up')).toBe(1);
    expect(sample(up.body, 'vca_nodes{state="ready"}')).toBe(0);

    await redis.stop();
    const down = await gw.request('operator', 'GET', '/metrics');
    expect(down.status).toBe(200);
    expect(sample(down.body, 'vca_store_up')).toBe(0);
    // Process series are still there to tell a store outage from a dead gateway.
    expect(down.body).toMatch(/^process_cpu_user_seconds_total /m);
    expect((await gw.request('none', 'GET', '/readyz')).status).toBe(503);

    await redis.restart();
    const started = Date.now();
    for (;;) {
      const again = await gw.request('operator', 'GET', '/metrics');
      if (sample(again.body, 'vca_store_up') === 1) break;
      expect(Date.now() - started, 'vca_store_up back to 1 within 10 s').toBeLessThan(10_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
});
