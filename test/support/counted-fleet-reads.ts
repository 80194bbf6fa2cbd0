/**
 * The embedded store with its fleet reads (`listNodes`) counted and, where a test needs a slow read,
 * stretched: the list is taken at the call, answered `readMs` of wall time later (time is all that is
 * faked; the store and its answers are real).
 */
import type { EmbeddedStore } from '../../src/store/embedded/embedded-store.js';
import { createEmbeddedStore } from '../store/embedded-factory.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function countedFleetReads(readMs = 0): { store: EmbeddedStore; reads: () => number } {
  const store = createEmbeddedStore();
  let reads = 0;
  const listNodes = store.listNodes.bind(store);
  store.listNodes = async () => {
    reads += 1;
    const nodes = await listNodes();
    if (readMs > 0) await sleep(readMs);
    return nodes;
  };
  return { store, reads: () => reads };
}
