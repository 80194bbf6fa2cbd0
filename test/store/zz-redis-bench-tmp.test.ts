import { it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer } from '/work/main/test/support/redis-server.js';
import { createTestRedisStore } from '/work/main/test/store/redis-factory.js';
import { scriptSources } from '/work/main/src/store/redis/scripts.js';
import { createOptions, healthyReport, registration, sessionSpec } from '/work/main/test/store/store-fixtures.js';

it('bench', async () => {
  const server = await startRedisServer();
  const store = await createTestRedisStore(server.url);
  const r = new Redis(server.url);
  for (let i = 0; i < 1000; i++) {
    await store.registerNode(registration(`n${i}`, [{ model: 'L4', count: 4 }], { region: i % 2 ? 'eu' : 'us' }), 0);
    await store.recordTelemetry(`n${i}`, healthyReport(4), 0);
  }
  const prelude = scriptSources().get('sweep-stale')!.split('-- sweep-stale.lua')[0]!;
  const keys = store.keys.scriptKeys;
  const settings = (store as any).scriptHead.at(-1);
  const spec = JSON.stringify({ ...sessionSpec('x'), state: 'queued', placement: null });
  const bodies: Record<string, string> = {
    decode: 'local s = cjson.decode(ARGV[2]) return 1',
    decodeEncode: 'local s = cjson.decode(ARGV[2]) local t = cjson.encode(s) return 1',
    sweep: 'sweep_stale(10) return 1',
    smembers: 'local p = redis.call("SMEMBERS", K_POOLS) table.sort(p) return 1',
    zrange64: 'local b = redis.call("ZRANGEBYSCORE", pool_key("gpu", "L4|eu"), 0, "+inf", "LIMIT", 0, 64) return 1',
    loadgpu: 'local g = load_gpu("n1#0") return 1',
    loadnode: 'local g = load_node("n1") return 1',
    pick: 'local s = cjson.decode(ARGV[2]) local g = pick(s.costs, "packed", nil, nil, nil) return 1',
    refresh: 'refresh_node(load_node("n1")) return 1',
  };
  for (const [name, body] of Object.entries(bodies)) {
    const sha = await r.script('LOAD', prelude + '\n' + body) as string;
    await r.config('RESETSTAT');
    for (let i = 0; i < 2000; i++) await r.evalsha(sha, keys.length, ...keys, settings, spec);
    console.log(name, (await r.info('commandstats')).split('\n').filter(l => /evalsha/.test(l)).join('\n'));
  }
  await r.quit();
  await store.close();
  await server.stop();
}, 120_000);
