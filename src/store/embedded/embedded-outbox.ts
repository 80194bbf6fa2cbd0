/**
 * The embedded store's callback outbox: entries by id, each with its due time. The store adds an entry
 * in the same synchronous step as the node's transition to drained; claims scan every entry, which is
 * fine for a backlog of a handful (an entry lives from a drain until its callback is answered).
 */
import type { RenderNode } from '../../fleet/render-node.js';
import type { OutboxEntry } from '../../state/state-store.js';

function copyEntry(entry: OutboxEntry): OutboxEntry {
  return { ...entry, node: { ...entry.node } };
}

export class EmbeddedOutbox {
  private readonly entries = new Map<string, OutboxEntry>();

  get length(): number {
    return this.entries.size;
  }

  /** The node just became drained: its callback is due now (once: drained is final until removal). */
  addNodeDrained(node: RenderNode, now: number): void {
    const id = `node-drained:${node.id}:${node.registeredAt}`;
    if (this.entries.has(id)) return;
    this.entries.set(id, {
      id,
      kind: 'node-drained',
      node: { id: node.id, host: node.registration.host, group: node.registration.group ?? null },
      createdAt: now,
      dueAt: now,
      attempts: 0,
      lastError: null,
    });
  }

  claim(now: number, leaseMs: number, limit: number): OutboxEntry[] {
    const due = [...this.entries.values()]
      .filter((entry) => entry.dueAt <= now)
      .sort((a, b) => a.dueAt - b.dueAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, Math.max(0, limit));
    for (const entry of due) {
      entry.attempts++;
      entry.dueAt = now + leaseMs;
    }
    return due.map(copyEntry);
  }

  complete(id: string): boolean {
    return this.entries.delete(id);
  }

  retry(id: string, attempts: number, dueAt: number, detail: string): boolean {
    const entry = this.entries.get(id);
    if (!entry || entry.attempts !== attempts) return false;
    entry.dueAt = dueAt;
    entry.lastError = detail;
    return true;
  }
}
