/**
 * Boot-time configuration: defaults, then `config/default.yaml` (or `VCA_CONFIG`), then environment
 * variables; validated once against the schema and frozen. Any invalid value stops start-up with a
 * message that names the key path and the source it came from.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { TrustedProxies, TrustedProxyEntryError } from '../http/trusted-proxies.js';
import { GamerJwtKeyError, readGamerJwtKeys } from './gamer-jwt-keys.js';
import { ConfigSchema, type VcaConfig } from './schema.js';

/** Environment variables an operator can set, and the config path each overrides. */
export const environmentVariables: ReadonlyArray<{
  name: string;
  path: string;
  description: string;
  list?: boolean;
}> = [
  { name: 'PORT', path: 'server.port', description: 'TCP port the gateway listens on (0 = any free port)' },
  { name: 'HOST', path: 'server.host', description: 'Address the gateway binds to' },
  {
    name: 'VCA_ADMIN_PORT',
    path: 'server.adminPort',
    description:
      'Port of the admin listener (health, readiness, metrics, operator API on node:http): -1 = off (default), 0 = any free port',
  },
  {
    name: 'VCA_ADMIN_HOST',
    path: 'server.adminHost',
    description: 'Address the admin listener binds to (default: the same as `HOST`)',
  },
  {
    name: 'VCA_TRUSTED_PROXIES',
    path: 'server.trustedProxies',
    description:
      'Comma-separated addresses or CIDR blocks of proxies allowed to name the client (PROXY protocol v2, X-Forwarded-For)',
    list: true,
  },
  { name: 'VCA_STORE', path: 'store.kind', description: '`embedded` (default) or `redis`' },
  {
    name: 'VCA_REDIS_MODE',
    path: 'store.redis.mode',
    description: '`single` (default), `sentinel` or `cluster`',
  },
  { name: 'VCA_REDIS_URL', path: 'store.redis.url', description: 'Redis URL (mode `single`)' },
  {
    name: 'VCA_REDIS_SENTINELS',
    path: 'store.redis.sentinels',
    description: 'Comma-separated `host:port` of the sentinels (mode `sentinel`)',
    list: true,
  },
  {
    name: 'VCA_REDIS_SENTINEL_MASTER',
    path: 'store.redis.sentinelMasterName',
    description: 'Master name the sentinels watch (mode `sentinel`)',
  },
  {
    name: 'VCA_REDIS_CLUSTER_NODES',
    path: 'store.redis.clusterNodes',
    description: 'Comma-separated `host:port` seed nodes (mode `cluster`)',
    list: true,
  },
  {
    name: 'VCA_REDIS_PASSWORD',
    path: 'store.redis.password',
    description: 'Redis password (modes `sentinel` and `cluster`; `single` takes it in the URL)',
  },
  {
    name: 'VCA_REDIS_SENTINEL_PASSWORD',
    path: 'store.redis.sentinelPassword',
    description: "The sentinels' own password (mode `sentinel`)",
  },
  { name: 'VCA_REDIS_KEY_PREFIX', path: 'store.redis.keyPrefix', description: 'Prefix of every Redis key' },
  {
    name: 'VCA_CLUSTER_NAME',
    path: 'store.redis.cluster',
    description: 'Gaming-cluster name (Redis hash tag)',
  },
  { name: 'VCA_PLACEMENT_STRATEGY', path: 'placement.strategy', description: '`packed` or `spread`' },
  {
    name: 'VCA_COST_LEARNING',
    path: 'costs.learning.enabled',
    description: '`false` to place on catalog costs only (no learned costs)',
  },
  { name: 'VCA_LOG_LEVEL', path: 'log.level', description: 'pino level: info, debug, warn, ...' },
  { name: 'VCA_AUTOSCALER_ENABLED', path: 'autoscaler.enabled', description: '`true` to run the autoscaler' },
  {
    name: 'VCA_GAMER_TOKENS',
    path: 'auth.gamerTokens',
    description: 'Comma-separated gamer bearer tokens',
    list: true,
  },
  {
    name: 'VCA_OPERATOR_TOKENS',
    path: 'auth.operatorTokens',
    description: 'Comma-separated operator bearer tokens',
    list: true,
  },
  {
    name: 'VCA_ORCHESTRATOR_SECRET',
    path: 'auth.orchestratorSecret',
    description: 'Webhook shared secret / HMAC key',
  },
  {
    name: 'VCA_MASTER_SECRET',
    path: 'auth.masterSecret',
    description: 'Master secret for tickets and node tokens',
  },
  {
    name: 'VCA_PUBLIC_METRICS',
    path: 'auth.publicMetrics',
    description: '`true` to serve /metrics without a token',
  },
  {
    name: 'VCA_GAMER_JWT_ISSUER',
    path: 'auth.gamerJwt.issuer',
    description: 'Required `iss` of gamer identity tokens (JWTs); setting it turns them on',
  },
  {
    name: 'VCA_GAMER_JWT_AUDIENCE',
    path: 'auth.gamerJwt.audience',
    description: 'Required `aud` of gamer identity tokens',
  },
  {
    name: 'VCA_GAMER_JWT_PUBLIC_KEYS',
    path: 'auth.gamerJwt.publicKeys',
    description: 'Comma-separated PEM public keys gamer identity tokens are verified with',
    list: true,
  },
  {
    name: 'VCA_GAMER_JWT_JWKS_FILE',
    path: 'auth.gamerJwt.jwksFile',
    description: 'Local JWKS file with those keys instead (read once at boot, never fetched)',
  },
  {
    name: 'VCA_GAMER_JWT_ALGORITHMS',
    path: 'auth.gamerJwt.algorithms',
    description: 'Comma-separated accepted signature algorithms (default `RS256,ES256,EdDSA`)',
    list: true,
  },
  {
    name: 'VCA_MAX_SESSIONS_PER_GAMER',
    path: 'auth.maxSessionsPerGamer',
    description: 'Most live sessions one gamer (identity token `sub`) may hold (default 1)',
  },
  {
    name: 'VCA_DRAINED_CALLBACK_URL',
    path: 'hooks.drainedCallbackUrl',
    description: 'POSTed when a node is drained',
  },
  { name: 'VCA_SCALE_UP_URL', path: 'hooks.scaleUpUrl', description: 'Autoscaler scale-up signal URL' },
  { name: 'VCA_SCALE_DOWN_URL', path: 'hooks.scaleDownUrl', description: 'Autoscaler scale-down signal URL' },
  {
    name: 'VCA_AODH_REPEAT_COOLDOWN_SECONDS',
    path: 'hooks.aodh.repeatCooldownSeconds',
    description:
      "A firing alarm's re-notifications act at most once per this many seconds per alarm (default 300)",
  },
  {
    name: 'VCA_AODH_KEYSTONE_PROJECT_IDS',
    path: 'hooks.aodh.keystoneProjectIds',
    description: 'Comma-separated projects whose Keystone tokens (Aodh trust+http) may post alarms',
    list: true,
  },
  {
    name: 'VCA_AODH_KEYSTONE_ROLES',
    path: 'hooks.aodh.keystoneRoles',
    description: 'Comma-separated roles such a token must all carry',
    list: true,
  },
  {
    name: 'VCA_AODH_ALLOW_QUERY_SECRET',
    path: 'hooks.aodh.allowQuerySecret',
    description: "`false` to refuse `?secret=` on the Aodh hook (it leaks into Aodh's logs)",
  },
  {
    name: 'VCA_KEYSTONE_URL',
    path: 'openstack.keystone.url',
    description: 'Keystone v3 endpoint (`https://keystone:5000/v3`); empty = no Keystone',
  },
  {
    name: 'VCA_KEYSTONE_APPLICATION_CREDENTIAL_ID',
    path: 'openstack.keystone.applicationCredentialId',
    description: 'Id of the application credential the VCA authenticates with',
  },
  {
    name: 'VCA_KEYSTONE_APPLICATION_CREDENTIAL_SECRET',
    path: 'openstack.keystone.applicationCredentialSecret',
    description: "That application credential's secret (never logged)",
  },
  {
    name: 'VCA_KEYSTONE_REGION',
    path: 'openstack.keystone.region',
    description: 'Region of the catalog endpoints the VCA uses (empty = any)',
  },
  {
    name: 'VCA_KEYSTONE_INTERFACE',
    path: 'openstack.keystone.interface',
    description: 'Catalog endpoint interface: `public` (default), `internal` or `admin`',
  },
  {
    name: 'VCA_HEAT_URL',
    path: 'openstack.heat.url',
    description: 'Heat endpoint (`http://heat:8004/v1/<project id>`); empty = from the Keystone catalog',
  },
  {
    name: 'VCA_HEAT_STACK_ID',
    path: 'openstack.heat.stackId',
    description: 'Id of the stack holding the GPU group; setting it turns the pre-delete hook flow on',
  },
  { name: 'VCA_HEAT_STACK_NAME', path: 'openstack.heat.stackName', description: 'Name of that stack' },
  {
    name: 'VCA_HEAT_PROJECT_ID',
    path: 'openstack.heat.projectId',
    description: 'Project (tenant) id of that stack',
  },
  {
    name: 'VCA_HEAT_POLL_SECONDS',
    path: 'openstack.heat.pollSeconds',
    description: 'Seconds between looks for paused members (default 10)',
  },
  {
    name: 'VCA_HEAT_DRAIN_DEADLINE_SECONDS',
    path: 'openstack.heat.drainDeadlineSeconds',
    description:
      "Seconds a paused member's node drains before the rest migrate and its hook is cleared (default 600)",
  },
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface LoadConfigOptions {
  /** YAML file; defaults to `$VCA_CONFIG` or `config/default.yaml` under `configDir`. */
  file?: string;
  configDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Applied last, for tests and embedding. */
  overrides?: Record<string, unknown>;
}

/** The project's `config/` folder, found from this module whether it runs from `src/` or from `dist/src/`. */
function findConfigDir(): string {
  let dir = import.meta.dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'config');
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve('config');
    dir = parent;
  }
}

export const defaultConfigDir = findConfigDir();

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const current = target[key];
    if (isPlainObject(value) && isPlainObject(current)) mergeInto(current, value);
    else target[key] = value;
  }
}

function setPath(target: Record<string, unknown>, dottedPath: string, value: unknown): void {
  const keys = dottedPath.split('.');
  let cursor = target;
  for (const key of keys.slice(0, -1)) {
    if (!isPlainObject(cursor[key])) cursor[key] = {};
    cursor = cursor[key] as Record<string, unknown>;
  }
  cursor[keys[keys.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Reads and parses a YAML file, turning every failure into a ConfigError naming the file. */
export function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid YAML: ${(error as Error).message}`);
  }
}

/** Validates `value` against `schema` (after defaults and string coercion) or throws naming the path. */
export function validateWithSchema<S extends TSchema>(schema: S, value: unknown, origin: string): unknown {
  const withDefaults = Value.Default(schema, Value.Clone(value));
  const converted = Value.Convert(schema, withDefaults);
  const firstError = Value.Errors(schema, converted).First();
  if (firstError) {
    const keyPath = firstError.path.replace(/^\//, '').replaceAll('/', '.') || '(root)';
    throw new ConfigError(`invalid configuration at ${keyPath} (${origin}): ${firstError.message}`);
  }
  return converted;
}

export function loadConfig(options: LoadConfigOptions = {}): Readonly<VcaConfig> {
  const env = options.env ?? process.env;
  const configDir = options.configDir ?? defaultConfigDir;
  const file = options.file ?? env.VCA_CONFIG ?? path.join(configDir, 'default.yaml');
  const fromFile = readYamlFile(file) ?? {};
  if (!isPlainObject(fromFile)) throw new ConfigError(`${file} must hold a mapping at the top level`);

  const merged: Record<string, unknown> = {};
  mergeInto(merged, fromFile);
  const origins: string[] = [file];
  for (const variable of environmentVariables) {
    const raw = env[variable.name];
    if (raw === undefined || raw === '') continue;
    setPath(
      merged,
      variable.path,
      variable.list
        ? raw
            .split(',')
            .map((item) => item.trim())
            .filter(Boolean)
        : raw,
    );
    origins.push(`$${variable.name}`);
  }
  if (options.overrides) mergeInto(merged, structuredClone(options.overrides));

  const config = validateWithSchema(ConfigSchema, merged, origins.join(', ')) as VcaConfig;
  if (!config.queue.priorityClasses.includes(config.queue.defaultPriority)) {
    throw new ConfigError(
      `invalid configuration at queue.defaultPriority: "${config.queue.defaultPriority}" is not one of queue.priorityClasses`,
    );
  }
  const gamerTokens = new Set(config.auth.gamerTokens);
  if (config.auth.operatorTokens.some((token) => gamerTokens.has(token))) {
    throw new ConfigError(
      'invalid configuration at auth.operatorTokens: a token may not also be a gamer token',
    );
  }
  if (config.auth.masterSecret !== '' && Buffer.byteLength(config.auth.masterSecret) < 32) {
    throw new ConfigError(
      'invalid configuration at auth.masterSecret: use at least 32 bytes (openssl rand -hex 32)',
    );
  }
  const redis = config.store.redis;
  if (redis.mode === 'sentinel' && redis.sentinels.length === 0) {
    throw new ConfigError(
      'invalid configuration at store.redis.sentinels: mode sentinel needs the sentinels (host:port, ...)',
    );
  }
  if (redis.mode === 'sentinel' && redis.sentinelMasterName === '') {
    throw new ConfigError(
      'invalid configuration at store.redis.sentinelMasterName: mode sentinel needs the master name the sentinels watch',
    );
  }
  if (redis.mode === 'single' && (redis.password !== '' || redis.sentinelPassword !== '')) {
    throw new ConfigError(
      'invalid configuration at store.redis.password: mode single takes the password in store.redis.url (redis://:password@host:port)',
    );
  }
  if (redis.mode === 'cluster' && redis.clusterNodes.length === 0) {
    throw new ConfigError(
      'invalid configuration at store.redis.clusterNodes: mode cluster needs at least one host:port seed node',
    );
  }
  if (config.autoscaler.minNodes > config.autoscaler.maxNodes) {
    throw new ConfigError(
      'invalid configuration at autoscaler.minNodes: must not exceed autoscaler.maxNodes',
    );
  }
  try {
    new TrustedProxies(config.server.trustedProxies);
  } catch (error) {
    if (!(error instanceof TrustedProxyEntryError)) throw error;
    throw new ConfigError(`invalid configuration at server.trustedProxies.${error.index}: ${error.message}`);
  }
  const keystone = config.openstack.keystone;
  if (config.hooks.aodh.keystoneProjectIds.length > 0 && keystone.url === '') {
    throw new ConfigError(
      'invalid configuration at hooks.aodh.keystoneProjectIds: validating Keystone tokens needs openstack.keystone (url and application credential)',
    );
  }
  if (keystone.url !== '') {
    if (!/^https?:\/\/[^\s/]+/.test(keystone.url)) {
      throw new ConfigError(
        'invalid configuration at openstack.keystone.url: use an http(s) URL such as https://keystone:5000/v3',
      );
    }
    if (keystone.applicationCredentialSecret === '') {
      throw new ConfigError(
        'invalid configuration at openstack.keystone.applicationCredentialSecret: Keystone needs the application credential secret',
      );
    }
    if (keystone.applicationCredentialId === '' && keystone.applicationCredentialName === '') {
      throw new ConfigError(
        'invalid configuration at openstack.keystone.applicationCredentialId: give the application credential id (or its name with userId, or userName and userDomainName)',
      );
    }
    if (keystone.applicationCredentialId === '' && keystone.userId === '' && keystone.userName === '') {
      throw new ConfigError(
        'invalid configuration at openstack.keystone.userId: an application credential given by name needs its owner (userId, or userName and userDomainName)',
      );
    }
  }
  const heat = config.openstack.heat;
  if (heat.url !== '' && !/^https?:\/\/[^\s/]+/.test(heat.url)) {
    throw new ConfigError(
      'invalid configuration at openstack.heat.url: use an http(s) URL such as http://heat:8004/v1/<project id>',
    );
  }
  if (heat.stackId !== '') {
    for (const key of ['stackName', 'projectId'] as const) {
      if (heat[key] === '') {
        throw new ConfigError(
          `invalid configuration at openstack.heat.${key}: the Heat hook flow (openstack.heat.stackId set) needs it`,
        );
      }
    }
    if (heat.url === '' && keystone.url === '') {
      throw new ConfigError(
        'invalid configuration at openstack.heat.url: give the Heat endpoint, or openstack.keystone.* to find it in the catalog',
      );
    }
  }
  if (config.auth.gamerJwt) {
    try {
      readGamerJwtKeys(config.auth.gamerJwt);
    } catch (error) {
      if (!(error instanceof GamerJwtKeyError)) throw error;
      throw new ConfigError(`invalid configuration at ${error.message}`);
    }
  }
  return deepFreeze(config);
}
