/**
 * The regions gamers can measure and ask for: a region is the `region` label of a registered node.
 * Answers two questions: which regions are known (a gamer's reported latency to any other is dropped
 * with a warning) and, for `GET /v1/regions`, one ping target per region among its ready nodes. Reads
 * the node list from the store, keeps it current with node events, and reads it again at most once per
 * `maxAgeMs` (less often for a fleet whose read is long), so a burst of requests costs one read.
 */
import type { VcaEvent } from '../sessions/events.js';
import { fleetReadPacing, type NodeView, type StateStore } from '../state/state-store.js';
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
  /** The fleet as last read, kept current by node events: by node id. Null until the first read. */
  private nodes: Map<string, NodeView> | null = null;
  /** What the questions are answered from; rebuilt from `nodes` after a change. */
  private snapshot: RegionSnapshot | null = null;
  /** When `nodes` was read (the options' clock), and how long that read took (monotonic ms). */
  private readAt = 0;
  private readMs = 0;
  /** Regions of nodes named by node events: a node's region label never changes while it is registered. */
  private readonly recentRegions = new Map<string, string>();
  private reading: Promise<void> | null = null;
  /** Node events that arrived while a read was in flight: applied again on top of what it read. */
  private heardDuringRead: VcaEvent[] = [];

  constructor(options: RegionDirectoryOptions) {
    this.options = options;
    this.maxAgeMs = options.maxAgeMs ?? 5_000;
  }

  /**
   * Node events (here or relayed): a registration, state change or removal is applied to what was read,
   * so the next question sees it without reading the whole fleet again.
   */
  handleEvent(event: VcaEvent): void {
    if (event.type !== 'node-state' && event.type !== 'node-removed' && event.type !== 'node-drained') return;
    if (event.type === 'node-removed') this.recentRegions.delete(event.node.id);
    else if (event.node.labels.region) this.recentRegions.set(event.node.id, event.node.labels.region);
    if (this.reading) this.heardDuringRead.push(event);
    if (this.nodes) this.apply(this.nodes, event);
  }

  /** The region a node is in (null: none or unknown node); cheap for nodes this instance heard of. */
  async regionOf(nodeId: string): Promise<string | null> {
    return this.recentRegions.get(nodeId) ?? (await this.read()).nodeRegions.get(nodeId) ?? null;
  }

  async knownRegions(): Promise<ReadonlySet<string>> {
    return (await this.read()).known;
  }

  async readyRegions(): Promise<readonly RegionEntry[]> {
    return (await this.read()).ready;
  }

  private apply(nodes: Map<string, NodeView>, event: VcaEvent): void {
    if (event.type === 'node-removed') nodes.delete(event.node.id);
    else if (event.type === 'node-state' || event.type === 'node-drained')
      nodes.set(event.node.id, event.node);
    else return;
    this.snapshot = null;
  }

  /**
   * Answers from the fleet as read and patched by events. It is read again once `maxAgeMs` old (what
   * no event tells: telemetry going stale), but at most once per `fleetReadPacing` (50) times the last
   * read's duration: reading 10,000 nodes takes seconds, and questions keep being answered from what
   * was read meanwhile.
   */
  private async read(): Promise<RegionSnapshot> {
    const age = this.options.now() - this.readAt;
    if (
      this.nodes === null ||
      (age >= Math.max(this.maxAgeMs, fleetReadPacing * this.readMs) && !this.reading)
    ) {
      const reading = this.readFleet();
      if (this.nodes === null) await reading;
      else reading.catch(() => {});
    }
    if (this.nodes === null) throw new Error('the node list could not be read');
    this.snapshot ??= summariseRegions([...this.nodes.values()]);
    return this.snapshot;
  }

  /** Reads the whole fleet once at a time; a question during the read waits only for the first. */
  private readFleet(): Promise<void> {
    if (this.reading) return this.reading;
    const readAt = this.options.now();
    const started = performance.now();
    this.heardDuringRead = [];
    const reading = this.options.store
      .listNodes()
      .then((list) => {
        const nodes = new Map(list.map((node) => [node.id, node]));
        for (const event of this.heardDuringRead) this.apply(nodes, event);
        this.nodes = nodes;
        this.snapshot = null;
        this.readAt = readAt;
        this.readMs = performance.now() - started;
      })
      .finally(() => {
        this.reading = null;
        this.heardDuringRead = [];
      });
    this.reading = reading;
    return reading;
  }
}
