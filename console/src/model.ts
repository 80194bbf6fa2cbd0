/**
 * What the console knows, fed by the gateway's messages: nodes with a version each (a row re-renders
 * only when its node's version moved), the fleet's row layout (rebuilt only when a node appears,
 * leaves, or changes state or group — not on telemetry), the queue and autoscaler summary, the
 * timeline, and the 15-minute histories. Views subscribe and read; nothing here touches the DOM.
 */
import type {
  ConsoleEvent,
  ConsoleNode,
  ConsoleServerMessage,
  ConsoleSummary,
} from '../../src/http/console-protocol.js';

export type NodeView = Omit<ConsoleNode, 'history'>;

export interface NodeEntry {
  view: NodeView;
  /** Bumped on every change of the node (telemetry, load, state) or of its history. */
  version: number;
  /** Per GPU: effective render load in percent, oldest first; null where nothing was measured. */
  history: Array<Array<number | null>>;
}

export type FleetRow =
  | { kind: 'group'; key: string; state: string; group: string; nodes: number; gpus: number }
  | { kind: 'node'; key: string; id: string }
  | { kind: 'gpu'; key: string; id: string; index: number };

export const stateOrder = ['ready', 'provisioning', 'unhealthy', 'draining', 'drained', 'removed'];

/** 1,000,000 parts per million is a whole GPU (the gateway's `fullShare`). */
export const fullShare = 1_000_000;

export function renderPercent(gpu: NodeView['gpus'][number]): number {
  return Math.max(0, Math.min(100, Math.round((gpu.effective.gpu / fullShare) * 100)));
}

function decodeHex(series: string): Array<number | null> {
  const values: Array<number | null> = [];
  for (let at = 0; at + 2 <= series.length; at += 2) {
    const value = Number.parseInt(series.slice(at, at + 2), 16);
    values.push(value === 0xff || Number.isNaN(value) ? null : value);
  }
  return values;
}

type Listener = (change: { rows: boolean }) => void;

export class ConsoleModel {
  readonly nodes = new Map<string, NodeEntry>();
  summary: ConsoleSummary | undefined;
  events: ConsoleEvent[] = [];
  queueHistory: Array<number | null> = [];
  historySamples = 180;
  historySampleMs = 5000;
  /** Milliseconds to add to this browser's clock to get the gateway's. */
  clockSkewMs = 0;
  private rowsCache: FleetRow[] | undefined;
  private rowsFilter = '';
  private readonly listeners = new Set<Listener>();
  private pendingRows = false;
  private pendingChange = false;
  private scheduled = false;
  /** Versions keep growing across a reconnect, so a row never mistakes a new view for an old one. */
  private versionCounter = 0;

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Forgets the nodes (a fresh connection sends them all again). */
  reset(): void {
    this.nodes.clear();
    this.events = [];
    this.rowsCache = undefined;
    this.changed(true);
  }

  apply(message: ConsoleServerMessage): void {
    switch (message.type) {
      case 'hello':
        this.clockSkewMs = message.serverTime - Date.now();
        this.historySamples = message.historySamples;
        this.historySampleMs = message.historySampleMs;
        this.queueHistory = message.queueHistory;
        this.changed(false);
        break;
      case 'nodes':
        this.applyNodes(message.nodes, message.removed);
        break;
      case 'summary':
        this.summary = message.summary;
        this.changed(false);
        break;
      case 'events':
        this.events = [...this.events, ...message.events].slice(-500);
        this.changed(false);
        break;
      case 'sample': {
        const missed: null[] = new Array(Math.min(message.missed ?? 0, this.historySamples)).fill(null);
        this.queueHistory = [...this.queueHistory, ...missed, message.queueLength].slice(
          -this.historySamples,
        );
        for (const entry of this.nodes.values()) {
          entry.view.gpus.forEach((gpu, index) => {
            const series = entry.history[index] ?? [];
            series.push(...missed, gpu.stale ? null : renderPercent(gpu));
            if (series.length > this.historySamples) series.splice(0, series.length - this.historySamples);
            entry.history[index] = series;
          });
          entry.version = ++this.versionCounter;
        }
        this.changed(false);
        break;
      }
      case 'error':
        break;
    }
  }

  private applyNodes(nodes: ConsoleNode[], removed: string[]): void {
    let rows = false;
    for (const id of removed) if (this.nodes.delete(id)) rows = true;
    for (const node of nodes) {
      const { history, ...view } = node;
      const entry = this.nodes.get(view.id);
      if (entry === undefined) {
        rows = true;
        this.nodes.set(view.id, {
          view,
          version: ++this.versionCounter,
          history: (history ?? view.gpus.map(() => '')).map(decodeHex),
        });
        continue;
      }
      if (
        entry.view.state !== view.state ||
        entry.view.group !== view.group ||
        entry.view.gpus.length !== view.gpus.length
      )
        rows = true;
      entry.view = view;
      if (history !== undefined) entry.history = history.map(decodeHex);
      entry.version = ++this.versionCounter;
    }
    if (rows) this.rowsCache = undefined;
    this.changed(rows);
  }

  /** The fleet as rows: a header per state and group, each node, each of its GPUs. */
  fleetRows(filter: string): FleetRow[] {
    if (this.rowsCache !== undefined && filter === this.rowsFilter) return this.rowsCache;
    const needle = filter.trim().toLowerCase();
    const groups = new Map<string, NodeEntry[]>();
    for (const entry of this.nodes.values()) {
      const { view } = entry;
      if (
        needle &&
        !view.id.toLowerCase().includes(needle) &&
        !(view.group ?? '').toLowerCase().includes(needle) &&
        !(view.labels.region ?? '').toLowerCase().includes(needle) &&
        !view.gpus.some((gpu) => gpu.model.toLowerCase().includes(needle))
      )
        continue;
      const key = `${view.state}\u0000${view.group ?? ''}`;
      const list = groups.get(key) ?? [];
      list.push(entry);
      groups.set(key, list);
    }
    const rank = (state: string) => {
      const index = stateOrder.indexOf(state);
      return index < 0 ? stateOrder.length : index;
    };
    const keys = [...groups.keys()].sort((a, b) => {
      const [stateA = '', groupA = ''] = a.split('\u0000');
      const [stateB = '', groupB = ''] = b.split('\u0000');
      return rank(stateA) - rank(stateB) || stateA.localeCompare(stateB) || groupA.localeCompare(groupB);
    });
    const rows: FleetRow[] = [];
    for (const key of keys) {
      const entries = groups
        .get(key)!
        .sort((a, b) => a.view.id.localeCompare(b.view.id, 'en', { numeric: true }));
      const [state = '', group = ''] = key.split('\u0000');
      rows.push({
        kind: 'group',
        key: `g:${key}`,
        state,
        group: group || '(no group)',
        nodes: entries.length,
        gpus: entries.reduce((sum, entry) => sum + entry.view.gpus.length, 0),
      });
      for (const entry of entries) {
        rows.push({ kind: 'node', key: `n:${entry.view.id}`, id: entry.view.id });
        for (let index = 0; index < entry.view.gpus.length; index++)
          rows.push({ kind: 'gpu', key: `u:${entry.view.id}:${index}`, id: entry.view.id, index });
      }
    }
    this.rowsCache = rows;
    this.rowsFilter = filter;
    return rows;
  }

  /** Listeners hear of changes at most once per animation frame. */
  private changed(rows: boolean): void {
    this.pendingRows ||= rows;
    this.pendingChange = true;
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      if (!this.pendingChange) return;
      const change = { rows: this.pendingRows };
      this.pendingRows = false;
      this.pendingChange = false;
      for (const listener of this.listeners) listener(change);
    };
    // rAF stops in a background tab; a timer keeps the model's listeners current there too.
    if (typeof requestAnimationFrame === 'function' && document.visibilityState === 'visible')
      requestAnimationFrame(run);
    else setTimeout(run, 100);
  }
}
