/**
 * Shared fixtures for store tests: the real catalog, session specs priced by the real cost model,
 * node registrations, telemetry reports and the invariant every scenario ends with. Uses only the
 * StateStore interface, so any store implementation can be checked with them.
 */
import { expect } from 'vitest';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import { parseResolution } from '../../src/cost/resolution.js';
import { type LoadVector, sessionCost } from '../../src/cost/session-cost.js';
import type { NodeRegistration } from '../../src/fleet/render-node.js';
import type { GpuTelemetry, TelemetryReport } from '../../src/fleet/telemetry.js';
import type { SessionSpec } from '../../src/sessions/session.js';
import type { CreateSessionOptions, StateStore } from '../../src/state/state-store.js';

export const catalog = new CatalogIndex(
  loadCatalog({ catalog: { gamesFile: 'games.yaml', gpusFile: 'gpus.yaml' } }),
);

export const headroom = { gpu: 0.9, encoder: 0.9, vram: 0.95 };
export const temperatureMarginCelsius = 5;
export const staleAfterMs = 6_000;
export const priorityClasses = ['premium', 'standard'] as const;
export const leaseMs = 30_000;
export const queueWaitMs = 60_000;

export interface SessionFormat {
  game: string;
  resolution: string;
  fps: number;
}

/** Fills one L4 on its own (850,000 of the 900,000 ppm render capacity under headroom). */
export const heavyFormat: SessionFormat = { game: 'cyberpunk-2077', resolution: '1080p', fps: 60 };
/** A few percent of any GPU: the encoder session limit is what runs out first. */
export const lightFormat: SessionFormat = { game: 'stardew-valley', resolution: '720p', fps: 30 };

/** The session's cost on every catalog model that can host it, as the gateway computes it. */
export function costsFor(format: SessionFormat): Record<string, LoadVector> {
  const game = catalog.game(format.game);
  const size = parseResolution(format.resolution);
  const costs: Record<string, LoadVector> = {};
  for (const model of catalog.catalog.gpuModels.values()) {
    const cost = sessionCost({ game, size, fps: format.fps }, model);
    if (cost) costs[model.name] = cost;
  }
  return costs;
}

export function sessionSpec(
  id: string,
  format: SessionFormat = lightFormat,
  extra: Partial<SessionSpec> = {},
): SessionSpec {
  const size = parseResolution(format.resolution);
  return {
    id,
    game: format.game,
    width: size.width,
    height: size.height,
    fps: format.fps,
    priority: 'standard',
    transport: 'rest',
    costs: costsFor(format),
    ...extra,
  };
}

export function registration(
  id: string,
  gpus: NodeRegistration['gpus'] = [{ model: 'L4', count: 1 }],
  labels?: Record<string, string>,
): NodeRegistration {
  return {
    id,
    host: `${id}.render.test`,
    port: 7000,
    protocol: 'webrtc',
    gpus,
    ...(labels ? { labels } : {}),
  };
}

/** A report for GPUs 0..gpuCount-1: cool, not throttling, load values unknown unless overridden. */
export function healthyReport(gpuCount: number, overrides: Partial<GpuTelemetry> = {}): TelemetryReport {
  return {
    gpus: Array.from({ length: gpuCount }, (_, index) => ({
      index,
      temperatureGpu: 45,
      throttleActive: false,
      ...overrides,
    })),
  };
}

export function createOptions(
  now: number,
  overrides: Partial<CreateSessionOptions> = {},
): CreateSessionOptions {
  return {
    now,
    strategy: 'packed',
    waitMode: 'wait',
    maxQueueLength: 100,
    leaseExpiresAt: now + leaseMs,
    queueDeadline: now + queueWaitMs,
    ...overrides,
  };
}

/** Registers a node and sends its first telemetry, so it is ready at `now`. */
export async function readyNode(
  store: StateStore,
  id: string,
  gpus: NodeRegistration['gpus'] = [{ model: 'L4', count: 1 }],
  now = 0,
  labels?: Record<string, string>,
) {
  await store.registerNode(registration(id, gpus, labels), now);
  const gpuCount = gpus.reduce((total, entry) => total + entry.count, 0);
  return store.recordTelemetry(id, healthyReport(gpuCount), now);
}

/** The store's bookkeeping invariant: every GPU's committed load equals the sum of its live sessions. */
export async function expectInvariant(store: StateStore): Promise<void> {
  const audit = await store.audit();
  let sessionsOnGpus = 0;
  for (const gpu of audit.gpus) {
    expect(gpu.committed, `committed load of ${gpu.nodeId}#${gpu.index}`).toEqual(gpu.sumOfSessions);
    expect(gpu.sumOfSessions.encoderSessions).toBe(gpu.sessions);
    sessionsOnGpus += gpu.sessions;
  }
  expect(audit.liveSessions).toBe(sessionsOnGpus);
  expect(audit.queuedSessions).toBe((await store.queuePositions()).size);
}
