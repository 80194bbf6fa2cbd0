/**
 * Composition root of the domain: builds the store and the services from a validated config, a
 * catalog, a clock and an id source. The gateway, the benchmarks and the tests all start here.
 */
import { type Clock, type IdSource, randomIds, systemClock } from './clock.js';
import type { VcaConfig } from './config/schema.js';
import type { Catalog } from './cost/catalog.js';
import { CatalogIndex } from './cost/catalog.js';
import { FleetService } from './scaling/fleet-service.js';
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
    requireTelemetry: config.placement.requireTelemetry,
    priorityClasses: config.queue.priorityClasses,
    latencyPolicies: config.placement.latencyPolicies,
    allowUnreportedRegions: config.placement.allowUnreportedRegions,
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
  const sessions = new SessionService({
    store,
    catalog,
    policy: sessionPolicy(config),
    clock,
    ids: options.ids ?? randomIds,
    events,
    schedule: options.schedule,
    onBackgroundError: options.onBackgroundError,
  });
  const fleet = new FleetService({
    store,
    catalog,
    sessions,
    clock,
    events,
    defaultDrainDeadlineMs: config.drain.defaultDeadlineSeconds * 1000,
  });
  return { config, catalog, store, events, sessions, fleet, clock };
}
