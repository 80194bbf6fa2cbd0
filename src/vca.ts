/**
 * Composition root of the domain: builds the store and the services from a validated config, a
 * catalog, a clock and an id source. The gateway, the benchmarks and the tests all start here.
 */
import type { Logger } from 'pino';
import { type Clock, type IdSource, randomIds, systemClock } from './clock.js';
import type { VcaConfig } from './config/schema.js';
import type { Catalog } from './cost/catalog.js';
import { CatalogIndex } from './cost/catalog.js';
import type { CostLearningSettings } from './cost/cost-learner.js';
import { type HeatAuth, HeatClient } from './openstack/heat.js';
import { HeatPreDeleteHooks } from './openstack/heat-pre-delete-hooks.js';
import { KeystoneClient, keystoneOptionsFromConfig } from './openstack/keystone.js';
import { FleetService } from './scaling/fleet-service.js';
import { type HeatHookEvent, HeatHookRunner } from './scaling/heat-hooks.js';
import { CostLearning } from './sessions/cost-learning.js';
import { EventBus } from './sessions/events.js';
import { type SessionPolicy, SessionService } from './sessions/session-service.js';
import type { StateStore } from './state/state-store.js';
import { EmbeddedStore, type EmbeddedStoreOptions } from './store/embedded/embedded-store.js';

export interface Vca {
  config: Readonly<VcaConfig>;
  catalog: CatalogIndex;
  store: StateStore;
  events: EventBus;
  sessions: SessionService;
  fleet: FleetService;
  clock: Clock;
  /** Learned title costs: fed by telemetry, flushed to the store by the gateway every flushSeconds. */
  costs: CostLearning;
  /** The Heat pre-delete hook flow, when `openstack.heat.stackId` is set; the gateway polls it. */
  heatHooks?: HeatHookRunner;
}

export interface CreateVcaOptions {
  config: Readonly<VcaConfig>;
  catalog: Catalog;
  clock?: Clock;
  ids?: IdSource;
  /** A store to use instead of the one the config names (the Redis store is built by its own module). */
  store?: StateStore;
  schedule?: (task: () => void) => void;
  onBackgroundError?: (error: unknown) => void;
  /** Where background flows (the Heat hook flow) say what they did. */
  logger?: Logger;
  /** Keystone for the Heat hook flow, when the caller already has one; else built from `openstack.keystone`. */
  keystone?: HeatAuth & { endpoint(serviceType: string): Promise<string> };
}

export function sessionPolicy(config: Readonly<VcaConfig>): SessionPolicy {
  return {
    strategy: config.placement.strategy,
    headroom: config.placement.headroom,
    priorityClasses: config.queue.priorityClasses,
    defaultPriority: config.queue.defaultPriority,
    maxQueueLength: config.queue.maxLength,
    queueTimeoutMs: config.queue.timeoutSeconds * 1000,
    restLeaseMs: config.leases.restSeconds * 1000,
    websocketLeaseMs: config.leases.resumeGraceSeconds * 1000,
    maxSessionsPerGamer: config.auth.maxSessionsPerGamer,
  };
}

/**
 * What every store needs from the configuration: placement rules (latency policies included),
 * freshness, priority classes.
 */
export function storeOptions(config: Readonly<VcaConfig>, catalog: CatalogIndex): EmbeddedStoreOptions {
  return {
    catalog,
    headroom: config.placement.headroom,
    temperatureMarginCelsius: config.placement.temperatureMarginCelsius,
    staleAfterMs: config.telemetry.reportIntervalSeconds * config.telemetry.staleAfterIntervals * 1000,
    settleMs: config.telemetry.settleSeconds * 1000,
    maxClockSkewMs: config.telemetry.maxClockSkewSeconds * 1000,
    vramReserveMiB: config.placement.vramReserveMiB,
    requireTelemetry: config.placement.requireTelemetry,
    priorityClasses: config.queue.priorityClasses,
    latencyPolicies: config.placement.latencyPolicies,
    allowUnreportedRegions: config.placement.allowUnreportedRegions,
  };
}

/** The learner's settings from `costs.learning`. */
export function costLearningSettings(config: Readonly<VcaConfig>): CostLearningSettings {
  const learning = config.costs.learning;
  return {
    band: { min: learning.band.min, max: learning.band.max },
    priorSamples: learning.priorSamples,
    confidenceSessions: learning.confidenceSessions,
    minConfidence: learning.minConfidence,
    minConfidenceHeavier: learning.minConfidenceHeavier,
  };
}

export function createEmbeddedStore(config: Readonly<VcaConfig>, catalog: CatalogIndex): EmbeddedStore {
  return new EmbeddedStore(storeOptions(config, catalog));
}

export function createVca(options: CreateVcaOptions): Vca {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const catalog = new CatalogIndex(options.catalog);
  const events = new EventBus((error) => options.onBackgroundError?.(error));
  const store = options.store ?? createEmbeddedStore(config, catalog);
  const costs = new CostLearning({
    store,
    catalog,
    enabled: config.costs.learning.enabled,
    settings: costLearningSettings(config),
  });
  const sessions = new SessionService({
    store,
    catalog,
    policy: sessionPolicy(config),
    clock,
    ids: options.ids ?? randomIds,
    events,
    schedule: options.schedule,
    onBackgroundError: options.onBackgroundError,
    learnedCosts: costs,
  });
  const fleet = new FleetService({
    store,
    catalog,
    sessions,
    clock,
    events,
    defaultDrainDeadlineMs: config.drain.defaultDeadlineSeconds * 1000,
    costs,
  });
  const heatHooks = createHeatHooks(options, { store, fleet, sessions, clock });
  return {
    config,
    catalog,
    store,
    events,
    sessions,
    fleet,
    clock,
    costs,
    ...(heatHooks ? { heatHooks } : {}),
  };
}

/** The Heat hook flow from `openstack.heat` (off without a stack id); Keystone when configured, else no auth. */
function createHeatHooks(
  options: CreateVcaOptions,
  parts: Pick<Vca, 'store' | 'fleet' | 'sessions' | 'clock'>,
): HeatHookRunner | undefined {
  const heat = options.config.openstack.heat;
  if (heat.stackId === '') return undefined;
  const keystoneOptions = keystoneOptionsFromConfig(options.config.openstack.keystone);
  const keystone =
    options.keystone ??
    (keystoneOptions
      ? new KeystoneClient({
          ...keystoneOptions,
          clock: parts.clock,
          ...(options.logger ? { logger: options.logger } : {}),
        })
      : undefined);
  const client = new HeatClient({
    endpoint: heat.url !== '' ? heat.url : () => keystone!.endpoint('orchestration'),
    projectId: heat.projectId,
    auth: keystone ?? null,
    timeoutMs: heat.timeoutSeconds * 1000,
  });
  const logger = options.logger?.child({ component: 'heat-hooks', stack: heat.stackName });
  return new HeatHookRunner({
    ...parts,
    hooks: new HeatPreDeleteHooks({
      client,
      stack: { name: heat.stackName, id: heat.stackId },
      resourceName: heat.serverResourceName,
      nestedDepth: heat.nestedDepth,
    }),
    drainDeadlineMs: heat.drainDeadlineSeconds * 1000,
    leaderKey: `heat-hooks:leader:${heat.stackId}`,
    instanceId: randomIds(),
    leaseMs: heat.pollSeconds * 3000,
    ...(logger ? { onEvent: (event: HeatHookEvent) => logHeatHookEvent(logger, event) } : {}),
  });
}

function logHeatHookEvent(logger: Logger, event: HeatHookEvent): void {
  const member =
    'member' in event && event.member
      ? { memberStack: event.member.stack.name, member: event.member.member, serverId: event.member.serverId }
      : {};
  if (event.type === 'error') {
    logger.warn(
      { ...member, step: event.step, err: event.error },
      'heat hook flow: step failed, retried next poll',
    );
  } else {
    const { member: _member, type, ...rest } = event;
    logger.info({ ...member, ...rest }, `heat hook flow: ${type}`);
  }
}
