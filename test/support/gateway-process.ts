/**
 * Test support for distributed mode: real gateway child processes (`node --import tsx src/main.ts`) on
 * one real Redis, each on a free port of 127.0.0.1, plus small HTTP clients that speak to any of them
 * the way gamers, operators, orchestrators and node probes do. Every child started here is SIGKILLed
 * by `stopAllGatewayProcesses()` (call it in afterAll/afterEach) and when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { VcaConfig } from '../../src/config/schema.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import { signBody } from '../../src/http/credentials.js';
import { redisConnection } from '../../src/store/create-store.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis/index.js';
import { storeOptions } from '../../src/vca.js';
import { idleGpus } from './domain.js';
import { type ApiAnswer, callAs, type Role } from './http-call.js';

export const processCredentials = {
  gamerToken: 'distributed-gamer-token-0123456789',
  operatorToken: 'distributed-operator-token-0123456789',
  orchestratorSecret: 'distributed-orchestrator-secret-0123456789',
  masterSecret: 'distributed-master-secret-0123456789abcdef-0123456789abcdef',
};

/** tsx compiles src/ at every start: a few seconds on an idle machine, more on a loaded runner. */
const startupTimeoutMs = 30_000;

/**
 * Configuration shared by every gateway of a test (the YAML behind VCA_CONFIG): telemetry stays fresh
 * for minutes (the children run on the real clock), the per-address rate limit is out of the way (all
 * traffic comes from 127.0.0.1), REST leases outlive the test. Tests override what they exercise.
 */
export const distributedDefaults = {
  server: {
    requestsPerSecondPerAddress: 1_000_000,
    requestBurst: 1_000_000,
    maxConnectionsPerAddress: 10_000,
    shutdownGraceSeconds: 1,
  },
  telemetry: { reportIntervalSeconds: 60, staleAfterIntervals: 3 },
  leases: { restSeconds: 600, resumeGraceSeconds: 20 },
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function merged(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(base);
  for (const [key, value] of Object.entries(over)) {
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? merged(out[key], value) : value;
  }
  return out;
}

/** One gaming cluster on one Redis: the key prefix, cluster name and YAML every gateway of it shares. */
export interface DistributedCluster {
  /** The single Redis server's URL; undefined when `redisEnv` names another deployment. */
  redisUrl: string | undefined;
  /** Extra VCA_REDIS_* variables (e.g. VCA_REDIS_MODE=cluster with VCA_REDIS_CLUSTER_NODES). */
  redisEnv: Record<string, string>;
  keyPrefix: string;
  cluster: string;
  /** The VCA_CONFIG file. */
  configFile: string;
  /** The configuration a gateway of this cluster loads (for computing capacities, building a store). */
  config: Readonly<VcaConfig>;
  /** Removes the temporary config folder. */
  dispose(): void;
}

let clusters = 0;

export function defineCluster(
  redisUrl: string | undefined,
  overrides: Record<string, unknown> = {},
  redisEnv: Record<string, string> = {},
): DistributedCluster {
  clusters++;
  const dir = mkdtempSync(path.join(tmpdir(), 'vca-distributed-'));
  const configFile = path.join(dir, 'vca.yaml');
  writeFileSync(configFile, stringify(merged(distributedDefaults, overrides)));
  const keyPrefix = `vca-dist-${process.pid}-${clusters}`;
  const cluster = `cluster-${clusters}`;
  const env = gatewayEnv({ redisUrl, redisEnv, keyPrefix, cluster, configFile });
  return {
    redisUrl,
    redisEnv,
    keyPrefix,
    cluster,
    configFile,
    config: loadConfig({ env }),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A RedisStore in the test process over the cluster's keys, built the way the gateway builds it. */
export async function openClusterStore(cluster: DistributedCluster): Promise<RedisStore> {
  const catalog = new CatalogIndex(loadCatalog(cluster.config));
  return createRedisStore({
    ...storeOptions(cluster.config, catalog),
    redis: redisConnection(cluster.config.store.redis),
    keyPrefix: cluster.keyPrefix,
    cluster: cluster.cluster,
  });
}

function gatewayEnv(options: {
  redisUrl: string | undefined;
  redisEnv: Record<string, string>;
  keyPrefix: string;
  cluster: string;
  configFile: string;
}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    HOST: '127.0.0.1',
    PORT: '0',
    VCA_CONFIG: options.configFile,
    VCA_STORE: 'redis',
    ...(options.redisUrl === undefined ? {} : { VCA_REDIS_URL: options.redisUrl }),
    VCA_REDIS_KEY_PREFIX: options.keyPrefix,
    VCA_CLUSTER_NAME: options.cluster,
    VCA_LOG_LEVEL: 'info',
    VCA_GAMER_TOKENS: processCredentials.gamerToken,
    VCA_OPERATOR_TOKENS: processCredentials.operatorToken,
    VCA_ORCHESTRATOR_SECRET: processCredentials.orchestratorSecret,
    VCA_MASTER_SECRET: processCredentials.masterSecret,
    ...options.redisEnv,
  };
}

export interface GatewayProcess {
  readonly name: string;
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** The last log lines (stdout and stderr), for failure messages. */
  readonly output: string[];
  /** Log lines at level error or above (the first 200), and anything on stderr. */
  readonly errors: string[];
  /** Error lines that always mean a bug: a route that threw (500) or an unhandled rejection. */
  bugs(): string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True while the process runs. */
  alive(): boolean;
  /** Sends `signal` (no waiting). */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();

function killAllNow(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  running.clear();
}
process.once('exit', killAllNow);

/** SIGKILLs every gateway child still running and waits until each is gone. */
export async function stopAllGatewayProcesses(): Promise<void> {
  const children = [...running];
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  running.clear();
}

const outputLines = 400;

/** Spawns a gateway of `cluster` and resolves once it logged "gateway listening" and /readyz answers 200. */
export async function startGatewayProcess(
  cluster: DistributedCluster,
  name = 'gateway',
): Promise<GatewayProcess> {
  const env = gatewayEnv(cluster);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: process.cwd(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const output: string[] = [];
  const errors: string[] = [];
  let listeningPort: number | null = null;
  const onListening = new Set<() => void>();
  const collect = (isStderr: boolean) => {
    let partial = '';
    return (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        output.push(line);
        if (errors.length < 200 && (isStderr || /"level":(50|60)/.test(line))) errors.push(line);
        if (listeningPort === null && line.includes('"gateway listening"')) {
          try {
            listeningPort = Number(JSON.parse(line).port);
          } catch {}
          for (const listener of onListening) listener();
        }
      }
      if (output.length > outputLines) output.splice(0, output.length - outputLines);
    };
  };
  child.stdout!.on('data', collect(false));
  child.stderr!.on('data', collect(true));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  const describe = () => `${name} (pid ${child.pid}) output:\n${output.slice(-60).join('\n')}`;

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      child.kill('SIGKILL');
      reject(
        new Error(`${name} did not log "gateway listening" within ${startupTimeoutMs} ms\n${describe()}`),
      );
    }, startupTimeoutMs);
    const check = () => {
      if (listeningPort === null) return;
      cleanup();
      resolve(listeningPort);
    };
    const onExit = () => {
      cleanup();
      reject(new Error(`${name} exited before listening\n${describe()}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      onListening.delete(check);
      child.off('exit', onExit);
    };
    onListening.add(check);
    child.once('exit', onExit);
    check();
  });
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (response.status !== 200) throw new Error(`/readyz answered ${response.status}`);
    },
    { timeoutMs: 10_000, what: `${name} /readyz` },
  ).catch((error: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}\n${describe()}`);
  });

  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    name,
    url,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    child,
    output,
    errors,
    bugs: () =>
      errors.filter((line) =>
        /"msg":"(route failed|unhandled rejection)"|uncaught|TypeError|RangeError/i.test(line),
      ),
    exited,
    alive,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (alive()) child.kill(signal);
    },
    async stop(graceMs = 5_000) {
      if (!alive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `check` until it stops throwing, at most `timeoutMs`; rethrows the last failure. */
export async function eventually<T>(
  check: () => Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const { timeoutMs = 5_000, intervalMs = 25, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`${what}: not within ${timeoutMs} ms: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

export type { ApiAnswer, Role } from './http-call.js';

/** One HTTP call to a gateway process with the role's credentials; objects are sent as JSON. */
export function api(
  baseUrl: string,
  role: Role,
  method: string,
  requestPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<ApiAnswer> {
  return callAs(baseUrl, processCredentials, role, method, requestPath, body, headers, timeoutMs);
}

let hookEvents = 0;

export interface RegisteredNode {
  id: string;
  token: string;
  ticketKey: string;
  gpuCount: number;
}

/** Registers a node through a signed contextualize webhook (as the orchestrator does) on `baseUrl`. */
export async function registerNode(
  baseUrl: string,
  id: string,
  model = 'L4',
  gpuCount = 1,
): Promise<RegisteredNode> {
  const raw = JSON.stringify({
    eventId: `dist-up-${process.pid}-${id}-${++hookEvents}`,
    event: 'scale-up',
    group: 'distributed-test',
    nodes: [{ id, host: '127.0.0.1', port: 5900, protocol: 'webrtc', gpus: [{ model, count: gpuCount }] }],
  });
  const t = Math.floor(Date.now() / 1000);
  const answer = await api(baseUrl, 'none', 'POST', '/v1/hooks/contextualize', raw, {
    'content-type': 'application/json',
    'x-vca-signature': `t=${t},v1=${signBody(processCredentials.orchestratorSecret, t, raw)}`,
  });
  if (answer.status !== 200) {
    throw new Error(`registration of ${id} failed: ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  const node = answer.body.registered[0];
  return { id, token: node.token, ticketKey: node.ticketKey, gpuCount };
}

/** Idle telemetry for `node`, as its probe sends it, to `baseUrl`. */
export async function reportIdle(baseUrl: string, node: RegisteredNode): Promise<void> {
  const answer = await api(baseUrl, { token: node.token }, 'PUT', `/v1/nodes/${node.id}/telemetry`, {
    gpus: idleGpus(node.gpuCount),
  });
  if (answer.status !== 200) {
    throw new Error(`telemetry of ${node.id} failed: ${answer.status} ${JSON.stringify(answer.body)}`);
  }
}

/** Runs `task` over `items` with at most `limit` in flight; results in item order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
