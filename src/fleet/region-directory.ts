/**
 * The regions gamers can measure and ask for: a region is the `region` label of a registered node.
 * Answers two questions: which regions are known (a gamer's reported latency to any other is dropped
 * with a warning) and, for `GET /v1/regions`, one ping target per region among its ready nodes. Reads
 * the node list from the store at most once per `maxAgeMs` (and again after any node event), so a
 * burst of requests costs one read.
 */
import type { VcaEvent } from '../sessions/events.js';
import type { NodeView, StateStore } from '../state/state-store.js';
import { defaultPingPort, pingPortLabel, pingUrlLabel } from '../wire/ping-target.js';

export interface RegionEntry {
  region: string;
  /** Where a gamer's client times a round trip to this region: one of its ready nodes. */
  pingUrl: string;
  /** Ready nodes in the region. */
  nodes: number;
}

interface RegionSnapshot {
  known: ReadonlySet<string>;
  nodeRegions: ReadonlyMap<string, string>;
  ready: readonly RegionEntry[];
  readAt: number;
}

export interface RegionDirectoryOptions {
  store: StateStore;
  now: () => number;
  /** How long a read of the node list answers, ms. */
  maxAgeMs?: number;
}

/** The ping URL a node advertises through its labels. */
export function pingUrlOf(node: Pick<NodeView, 'host' | 'labels'>): string {
  const explicit = node.labels[pingUrlLabel];
  if (explicit) return explicit;
  const port = Number(node.labels[pingPortLabel] ?? defaultPingPort);
  const host = node.host.includes(':') ? `[${node.host}]` : node.host;
  return `http://${host}:${Number.isInteger(port) && port > 0 && port < 65_536 ? port : defaultPingPort}/ping`;
}

/** Known regions (any registered node) and the ready ones with a ping target each, from a node list. */
export function summariseRegions(nodes: readonly NodeView[]): {
  known: Set<string>;
  nodeRegions: Map<string, string>;
  ready: RegionEntry[];
} {
  const known = new Set<string>();
  const nodeRegions = new Map<string, string>();
  const ready = new Map<string, RegionEntry>();
  // Sorted by id so every instance (and every read) names the same ping target for a region.
  for (const node of [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const region = node.labels.region;
    if (!region || node.state === 'removed') continue;
    known.add(region);
    nodeRegions.set(node.id, region);
    if (node.state !== 'ready') continue;
    const entry = ready.get(region);
    if (entry) entry.nodes += 1;
    else ready.set(region, { region, pingUrl: pingUrlOf(node), nodes: 1 });
  }
  return {
    known,
    nodeRegions,
    ready: [...ready.values()].sort((a, b) => (a.region < b.region ? -1 : a.region > b.region ? 1 : 0)),
  };
}

export class RegionDirectory {
  private readonly options: RegionDirectoryOptions;
  private readonly maxAgeMs: number;
  private snapshot: RegionSnapshot | null = null;
  /** Regions of nodes named by node events: a node's region label never changes while it is registered. */
  private readonly recentRegions = new Map<string, string>();
  private reading: Promise<RegionSnapshot> | null = null;
  /** Bumped by every invalidation: a read begun before it must not be kept. */
  private generation = 0;

  constructor(options: RegionDirectoryOptions) {
    this.options = options;
    this.maxAgeMs = options.maxAgeMs ?? 5_000;
  }

  /** Node events (here or relayed): a registration, state change or removal makes the next question read again. */
  handleEvent(event: VcaEvent): void {
    if (event.type === 'node-state' || event.type === 'node-removed' || event.type === 'node-drained') {
      if (event.type === 'node-removed') this.recentRegions.delete(event.node.id);
      else if (event.node.labels.region) this.recentRegions.set(event.node.id, event.node.labels.region);
      this.invalidate();
    }
  }

  /** The region a node is in (null: none or unknown node); cheap for nodes this instance heard of. */
  async regionOf(nodeId: string): Promise<string | null> {
    return this.recentRegions.get(nodeId) ?? (await this.read()).nodeRegions.get(nodeId) ?? null;
  }

  /** Drops what was read: the next question reads the store again. */
  invalidate(): void {
    this.generation++;
    this.snapshot = null;
    this.reading = null;
  }

  async knownRegions(): Promise<ReadonlySet<string>> {
    return (await this.read()).known;
  }

  async readyRegions(): Promise<readonly RegionEntry[]> {
    return (await this.read()).ready;
  }

  private read(): Promise<RegionSnapshot> {
    const now = this.options.now();
    if (this.snapshot && now - this.snapshot.readAt < this.maxAgeMs) return Promise.resolve(this.snapshot);
    if (this.reading) return this.reading;
    const generation = this.generation;
    const reading = this.options.store.listNodes().then(
      (nodes) => {
        const snapshot = { ...summariseRegions(nodes), readAt: now };
        if (generation === this.generation) {
          this.snapshot = snapshot;
          this.reading = null;
        }
        return snapshot;
      },
      (error: unknown) => {
        if (generation === this.generation) this.reading = null;
        throw error;
      },
    );
    this.reading = reading;
    return reading;
  }
}
