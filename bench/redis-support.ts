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
import type { TelemetryReport } from '../src/fleet/telemetry.js';
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
  /**
   * Redis time per telemetry report as the gateway sends it (the report and the sessions on the node),
   * steady state: the same idle report again (the figure).
   */
  recordTelemetry: number;
  /** The same with +-2 points of noise on each measured value (VRAM +-2 MiB), as real probes report. */
  recordTelemetryNoisy: number;
  /** Share of the noisy reports the Redis store answered on its fast path (no GPU read), 0..1. */
  recordTelemetryNoisyFastShare: number;
  getSession: number;
  renewLeases: number;
  placeQueuedEmpty: number;
  queuePositionsEmpty: number;
}

/** A deterministic stream of integers in [-2, 2] (the noise of the noisy telemetry reports). */
function noiseSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return (state % 5) - 2;
  };
}

/** An idle report of `gpus` GPUs with +-2 points of noise on every measured value. */
function noisyReport(gpus: number, noise: () => number) {
  return {
    gpus: Array.from({ length: gpus }, (_, index) => ({
      index,
      utilizationGpu: 5 + noise(),
      utilizationEncoder: 2 + noise(),
      memoryUsed: 450 + noise(),
      temperatureGpu: 40 + noise(),
      encoderSessions: 0,
      // What gpu-probe reads from nvidia-smi with every sample, unchanged from one report to the next.
      memoryTotal: 23034,
      uuid: `GPU-5f1c0b6e-0000-4000-8000-00000000000${index}`,
      name: 'NVIDIA L4',
    })),
  };
}

/**
 * Redis microseconds per call of each hot operation, with `nodes` x `gpusPerNode` L4 registered and
 * fresh, `sessions` live sessions created (packed) then ended. Uses its own key prefix, removed after.
 *
 * The time of an operation is the Redis time of every command the store sent for it (counted on the
 * store's client), each at INFO commandstats' usec_per_call of its name: a script's (FCALL) includes the
 * commands it runs, which are not counted again. A telemetry report is what the gateway sends for one:
 * reportTelemetry with the sessions on the node (one FCALL), or on a store without it recordTelemetry
 * then sessionsOnNode (two).
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
  // Counts the commands the store sends (on its clients: telemetry has a connection of its own): what a
  // call costs is what it sent.
  const sent = new Map<string, number>();
  const storeClients = store as unknown as { client: Redis; telemetryClient?: Redis };
  for (const client of new Set([storeClients.client, storeClients.telemetryClient ?? storeClients.client])) {
    const send = client.sendCommand.bind(client);
    client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      const name = command.name.toLowerCase();
      sent.set(name, (sent.get(name) ?? 0) + 1);
      return (send as (...args: unknown[]) => unknown)(command, ...rest);
    }) as typeof client.sendCommand;
  }
  const usecPerCall = async (calls: () => Promise<number>): Promise<number> => {
    await stats.config('RESETSTAT');
    sent.clear();
    const made = await calls();
    const after = await commandStats(stats);
    if (process.env.BENCH_REDIS_VERBOSE) {
      const perCall = [...after].map(
        ([name, stat]) => `${name} ${round(stat.calls / made, 2)}x ${round(stat.usec / stat.calls, 2)}us`,
      );
      const top = [...sent].map(([name, count]) => `${name} ${round(count / made, 2)}x`);
      console.log(`${made} calls: sent ${top.join(', ')}; Redis ran ${perCall.join(', ')}`);
    }
    let usec = 0;
    let commands = 0;
    for (const [name, count] of sent) {
      const stat = after.get(name);
      if (!stat) throw new Error(`the store sent ${name}, Redis did not count it`);
      usec += (count * stat.usec) / stat.calls;
      commands += count;
    }
    if (commands < made) throw new Error(`expected ${made} calls, the store sent ${commands}`);
    return round(usec / made, 2);
  };
  // A report as the gateway's telemetry route makes it.
  const withSessions = store as unknown as Partial<Pick<RedisStore, 'reportTelemetry'>>;
  const sendReport = async (id: string, body: TelemetryReport, at: number) => {
    if (withSessions.reportTelemetry) await store.reportTelemetry(id, body, at, { sessions: true });
    else {
      await store.recordTelemetry(id, body, at);
      await store.sessionsOnNode(id);
    }
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
    // The first report makes the nodes ready; the measured ones are the steady state (after a few).
    for (let round = 0; round < 3; round++) for (const id of ids) await sendReport(id, report, now);
    const telemetry = await usecPerCall(async () => {
      for (const id of ids) await sendReport(id, report, now + 1);
      return ids.length;
    });
    // Noisy: every value moves by up to 2 points between reports (a few reports first, so the measured
    // ones follow noisy ones). The fast path's share: reports that read no GPU hash (HGETALL).
    const noise = noiseSource(20261129);
    for (const id of ids) await sendReport(id, noisyReport(gpusPerNode, noise), now + 1);
    let gpuReads = 0;
    const noisy = await usecPerCall(async () => {
      for (const id of ids) await sendReport(id, noisyReport(gpusPerNode, noise), now + 1);
      gpuReads = (await commandStats(stats)).get('hgetall')?.calls ?? 0;
      return ids.length;
    });
    const noisyFastShare = round(1 - Math.min(1, gpuReads / (ids.length * (1 + gpusPerNode))), 3);
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
      recordTelemetryNoisy: noisy,
      recordTelemetryNoisyFastShare: noisyFastShare,
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
