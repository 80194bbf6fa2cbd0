/** Builds the embedded store the way the gateway does, over the real catalog. */
import { EmbeddedStore, type EmbeddedStoreOptions } from '../../src/store/embedded/embedded-store.js';
import {
  catalog,
  headroom,
  priorityClasses,
  staleAfterMs,
  temperatureMarginCelsius,
} from './store-fixtures.js';

export function createEmbeddedStore(overrides: Partial<EmbeddedStoreOptions> = {}): EmbeddedStore {
  return new EmbeddedStore({
    catalog,
    headroom,
    temperatureMarginCelsius,
    staleAfterMs,
    requireTelemetry: true,
    priorityClasses,
    latencyPolicies: [],
    allowUnreportedRegions: false,
    ...overrides,
  });
}
