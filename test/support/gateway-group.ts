/**
 * Test support for distributed mode: gaming clusters of real gateway processes (kit/gateway-process.ts)
 * on one Redis deployment, a RedisStore over a cluster's keys, and small clients that speak to any of
 * the gateways the way gamers, operators, orchestrators and node probes do.
 */

import {
  type GatewayProcess,
  gatewayCredentials,
  gatewayCredentialsEnv,
  mergeSettings,
  type RegisteredNode,
  registerNodes,
  startGatewayProcess,
  writeGatewayConfig,
} from '../../kit/gateway-process.js';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { VcaConfig } from '../../src/config/schema.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import { redisConnection } from '../../src/create-store.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis/index.js';
import { storeOptions } from '../../src/vca.js';
import { type ApiAnswer, callAs, type Role } from './http-call.js';

/**
 * Configuration shared by every gateway of a test (the YAML behind VCA_CONFIG): telemetry stays fresh
 * for minutes (the children run on the real clock), the per-address rate limit is out of the way (all
 * traffic comes from 127.0.0.1), REST leases outlive the test. Tests override what they exercise.
 */
const distributedDefaults = {
  server: {
    requestsPerSecondPerAddress: 1_000_000,
    requestBurst: 1_000_000,
    maxConnectionsPerAddress: 10_000,
    shutdownGraceSeconds: 1,
  },
  telemetry: { reportIntervalSeconds: 60, staleAfterIntervals: 3 },
  leases: { restSeconds: 600, resumeGraceSeconds: 20 },
};

/** One gaming cluster on one Redis: the key prefix, cluster name and YAML every gateway of it shares. */
export interface GatewayGroup {
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

export function defineGatewayGroup(
  redisUrl: string | undefined,
  overrides: Record<string, unknown> = {},
  redisEnv: Record<string, string> = {},
): GatewayGroup {
  clusters++;
  const { file: configFile, remove } = writeGatewayConfig(mergeSettings(distributedDefaults, overrides));
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
    dispose: remove,
  };
}

/** A RedisStore in the test process over the cluster's keys, built the way the gateway builds it. */
export async function openGroupStore(cluster: GatewayGroup): Promise<RedisStore> {
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
    PORT: '0',
    VCA_CONFIG: options.configFile,
    VCA_STORE: 'redis',
    ...(options.redisUrl === undefined ? {} : { VCA_REDIS_URL: options.redisUrl }),
    VCA_REDIS_KEY_PREFIX: options.keyPrefix,
    VCA_CLUSTER_NAME: options.cluster,
    VCA_LOG_LEVEL: 'info',
    ...gatewayCredentialsEnv,
    ...options.redisEnv,
  };
}

/**
 * Starts a gateway of `cluster`; resolves once it listens and /readyz answers 200. `env`: variables of
 * this gateway alone, over the cluster's (e.g. its own VCA_DRAINED_CALLBACK_URL).
 */
export function startGroupGateway(
  cluster: GatewayGroup,
  name = 'gateway',
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  return startGatewayProcess({ name, env: { ...gatewayEnv(cluster), ...env } });
}

export type { ApiAnswer } from './http-call.js';

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
  return callAs(baseUrl, gatewayCredentials, role, method, requestPath, body, headers, timeoutMs);
}

/** Registers one node through a signed contextualize webhook (as the orchestrator does) on `baseUrl`. */
export async function registerNode(
  baseUrl: string,
  id: string,
  model = 'L4',
  gpuCount = 1,
): Promise<RegisteredNode> {
  const [node] = await registerNodes(baseUrl, [{ id, model, gpuCount }]);
  return node!;
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
