/**
 * Redis plumbing of the Redis benchmark: a throw-away redis-server (kit/redis-server.ts) with a client
 * for the benchmark's own commands, INFO commandstats readings, and the Redis time each store script
 * takes per call under a realistic fleet (RedisStore driven directly, `usec_per_call` of FCALL per
 * operation kind).
 *
 * Runnable on its own: `tsx bench/redis-support.ts [nodes] [gpusPerNode]` prints the per-call costs.
 */
import { Redis } from 'ioredis';
import { idleGpus } from '../kit/idle-telemetry.js';
import { startRedisServer } from '../kit/redis-server.js';
import { loadCatalog } from '../src/config/load-catalog.js';
import { CatalogIndex } from '../src/cost/catalog.js';
import { parseResolution } from '../src/cost/resolution.js';
import { type LoadVector, sessionCost } from '../src/cost/session-cost.js';
import type { SessionSpec } from '../src/sessions/session.js';
import { createRedisStore, type RedisStore } from '../src/store/redis/index.js';
import { round } from './gateway-harness.js';

export interface BenchRedis {
  url: string;
  port: number;
  /** redis-server's pid, for CPU readings and pinning. */
  pid: number;
  /** The benchmark's own connection (FLUSHALL, CONFIG RESETSTAT, INFO). */
  client: Redis;
  stop(): Promise<void>;
}

/** Starts `redis-server` on a free port, nothing saved, with a connected client; killed on exit too. */
export async function startBenchRedis(): Promise<BenchRedis> {
  const server = await startRedisServer();
  const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await client.ping();
  return {
    url: server.url,
    port: server.port,
    pid: server.pid,
    client,
    stop: async () => {
      client.disconnect();
      await server.stop();
    },
  };
}

export interface CommandStat {
  calls: number;
  usec: number;
}

/** INFO commandstats as command name -> {calls, usec}. */
export async function commandStats(client: Redis): Promise<Map<string, CommandStat>> {
  const text = await client.info('commandstats');
  const stats = new Map<string, CommandStat>();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    stats.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

/** after - before, per command, dropping commands that did not run in between. */
export function statsDelta(
  before: Map<string, CommandStat>,
  after: Map<string, CommandStat>,
): Map<string, CommandStat> {
  const delta = new Map<string, CommandStat>();
  for (const [name, stat] of after) {
    const was = before.get(name) ?? { calls: 0, usec: 0 };
    const calls = stat.calls - was.calls;
    if (calls > 0) delta.set(name, { calls, usec: stat.usec - was.usec });
  }
  return delta;
}

const catalogIndex = new CatalogIndex(
  loadCatalog({ catalog: { gamesFile: 'games.yaml', gpusFile: 'gpus.yaml' } }),
);

/** The bench's light session (720p30 stardew-valley) priced on every model, as the gateway does. */
export function lightSpec(id: string): SessionSpec {
  const game = catalogIndex.game('stardew-valley');
  const size = parseResolution('720p');
  const costs: Record<string, LoadVector> = {};
  for (const model of catalogIndex.catalog.gpuModels.values()) {
    const cost = sessionCost({ game, size, fps: 30 }, model);
    if (cost) costs[model.name] = cost;
  }
  return {
    id,
    game: 'stardew-valley',
    width: size.width,
    height: size.height,
    fps: 30,
    priority: 'standard',
    transport: 'rest',
    costs,
  };
}

/** A Redis store as the gateway builds it (default headroom, two priority classes) on the real catalog. */
export function benchRedisStore(
  redis: string,
  options: { staleAfterMs: number; keyPrefix: string; cluster: string },
): Promise<RedisStore> {
  return createRedisStore({
    catalog: catalogIndex,
    headroom: { gpu: 0.9, encoder: 0.9, vram: 0.95 },
    temperatureMarginCelsius: 5,
    requireTelemetry: true,
    priorityClasses: ['premium', 'standard'],
    latencyPolicies: [],
    allowUnreportedRegions: false,
    redis,
    ...options,
  });
}

export interface ScriptCosts {
  fleet: string;
  createSession: number;
  endSession: number;
  recordTelemetry: number;
  getSession: number;
  renewLeases: number;
  placeQueuedEmpty: number;
  queuePositionsEmpty: number;
}

/**
 * Redis microseconds per call of each hot operation, with `nodes` x `gpusPerNode` L4 registered and
 * fresh, `sessions` live sessions created (packed) then ended. Uses its own key prefix, removed after.
 */
export async function measureScriptCosts(
  url: string,
  options: { nodes?: number; gpusPerNode?: number; sessions?: number } = {},
): Promise<ScriptCosts> {
  const nodes = options.nodes ?? 1000;
  const gpusPerNode = options.gpusPerNode ?? 4;
  const sessions = options.sessions ?? 4000;
  const stats = new Redis(url);
  const store = await benchRedisStore(url, {
    staleAfterMs: 6000,
    keyPrefix: `vca-script-costs-${process.pid}`,
    cluster: 'bench',
  });
  const report = { gpus: idleGpus(gpusPerNode) };
  const usecPerCall = async (calls: () => Promise<number>): Promise<number> => {
    await stats.config('RESETSTAT');
    const made = await calls();
    const after = await commandStats(stats);
    if (process.env.BENCH_REDIS_VERBOSE) {
      const perCall = [...after].map(
        ([name, stat]) => `${name} ${round(stat.calls / made, 2)}x ${round(stat.usec / stat.calls, 2)}us`,
      );
      console.log(`${made} calls: ${perCall.join(', ')}`);
    }
    // The store's scripts are functions (FCALL); EVAL and EVALSHA are counted too, for older builds.
    const none = { calls: 0, usec: 0 };
    const scriptStats = ['fcall', 'evalsha', 'eval'].map((name) => after.get(name) ?? none);
    const evalsha = {
      calls: scriptStats.reduce((sum, stat) => sum + stat.calls, 0),
      usec: scriptStats.reduce((sum, stat) => sum + stat.usec, 0),
    };
    const gets = after.get('get') ?? { calls: 0, usec: 0 };
    const hmget = after.get('hmget') ?? { calls: 0, usec: 0 };
    const all = evalsha.calls > 0 ? evalsha : gets.calls > 0 ? gets : hmget;
    if (all.calls < made) throw new Error(`expected ${made} calls, Redis saw ${all.calls}`);
    return round(all.usec / all.calls, 2);
  };
  try {
    const ids: string[] = [];
    const now = Date.now();
    for (let start = 0; start < nodes; start += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, nodes - start) }, async (_, i) => {
          const id = `node-${String(start + i).padStart(5, '0')}`;
          await store.registerNode(
            {
              id,
              host: '10.0.0.1',
              port: 5900,
              protocol: 'webrtc',
              gpus: [{ model: 'L4', count: gpusPerNode }],
              labels: {},
            },
            now,
          );
          ids.push(id);
        }),
      );
    }
    // The first report makes the nodes ready; the measured one is the steady state.
    for (const id of ids) await store.recordTelemetry(id, report, now);
    const telemetry = await usecPerCall(async () => {
      for (const id of ids) await store.recordTelemetry(id, report, now + 1);
      return ids.length;
    });
    const options = {
      now: now + 2,
      strategy: 'packed' as const,
      waitMode: 'no-wait' as const,
      maxQueueLength: 10_000,
      leaseExpiresAt: now + 30_000,
      queueDeadline: now + 300_000,
    };
    const create = await usecPerCall(async () => {
      for (let i = 0; i < sessions; i++) {
        const outcome = await store.createSession(lightSpec(`s-${i}`), options);
        if (outcome.kind !== 'assigned') throw new Error(`session ${i} was ${outcome.kind}`);
      }
      return sessions;
    });
    const get = await usecPerCall(async () => {
      for (let i = 0; i < 1000; i++) await store.getSession(`s-${i}`);
      return 1000;
    });
    const renew = await usecPerCall(async () => {
      for (let i = 0; i < 1000; i++) await store.renewLeases([`s-${i}`], now + 40_000);
      return 1000;
    });
    const end = await usecPerCall(async () => {
      for (let i = 0; i < sessions; i++) {
        if (!(await store.endSession(`s-${i}`, 'released', now + 3))) throw new Error(`s-${i} not ended`);
      }
      return sessions;
    });
    const placeQueued = await usecPerCall(async () => {
      for (let i = 0; i < 1000; i++)
        await store.placeQueued(now + 4, 'packed', { rest: 30_000, websocket: 60_000 });
      return 1000;
    });
    const positions = await usecPerCall(async () => {
      for (let i = 0; i < 1000; i++) await store.queuePositions();
      return 1000;
    });
    return {
      fleet: `${nodes} nodes x ${gpusPerNode} L4, ${sessions} sessions created (packed) then ended`,
      createSession: create,
      endSession: end,
      recordTelemetry: telemetry,
      getSession: get,
      renewLeases: renew,
      placeQueuedEmpty: placeQueued,
      queuePositionsEmpty: positions,
    };
  } finally {
    // Remove this measurement's keys (SCAN + UNLINK) so a later scenario starts clean.
    let cursor = '0';
    do {
      const [next, keys] = await stats.scan(
        cursor,
        'MATCH',
        `vca-script-costs-${process.pid}:*`,
        'COUNT',
        5000,
      );
      cursor = next;
      if (keys.length > 0) await stats.unlink(...keys);
    } while (cursor !== '0');
    await store.close();
    stats.disconnect();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const redis = await startBenchRedis();
  try {
    const costs = await measureScriptCosts(redis.url, {
      nodes: Number(process.argv[2] ?? 1000),
      gpusPerNode: Number(process.argv[3] ?? 4),
    });
    console.log(JSON.stringify(costs, null, 2));
  } finally {
    await redis.stop();
  }
  process.exit(0);
}
