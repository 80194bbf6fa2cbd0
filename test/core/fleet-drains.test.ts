/**
 * Drains by the fleet service: a count's victims are picked from a read and drained in one store step
 * only if each is still a candidate, so a change by another caller in between (another instance's
 * scale-down) makes it pick again instead of counting a node twice or draining half a list.
 */
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { VcaConfig } from '../../src/config/schema.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import { pickDrainVictims } from '../../src/scaling/drain-planner.js';
import type { StateStore } from '../../src/state/state-store.js';
import { EmbeddedStore } from '../../src/store/embedded/embedded-store.js';
import { createVca, storeOptions } from '../../src/vca.js';
import { addReadyNode, FakeClock } from '../support/domain.js';

/**
 * A VCA whose store lets `meanwhile` run right after each listNodes answer, as another instance would
 * act between the read that picks victims and the step that drains them.
 */
function vcaWithInterference(meanwhile: (store: StateStore, listed: number) => Promise<void>) {
  const config = loadConfig({ env: {}, overrides: {} }) as VcaConfig;
  const catalog = loadCatalog(config);
  const inner = new EmbeddedStore(storeOptions(config, new CatalogIndex(catalog)));
  let interfering = false;
  let listed = 0;
  const store = new Proxy(inner, {
    get(target, name) {
      if (name === 'listNodes' && interfering) {
        return async () => {
          const nodes = await target.listNodes();
          await meanwhile(target, ++listed);
          return nodes;
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const clock = new FakeClock();
  const vca = createVca({ config, catalog, clock, store, schedule: () => {} });
  return {
    vca,
    clock,
    interfere: () => {
      interfering = true;
    },
  };
}

async function states(store: StateStore): Promise<Record<string, string>> {
  return Object.fromEntries((await store.listNodes()).map((node) => [node.id, node.state]));
}

describe('fleet: drains by count', () => {
  it('picks again when another caller drained its first pick between the read and the step', async () => {
    let stolen = '';
    const { vca, clock, interfere } = vcaWithInterference(async (store, listed) => {
      if (listed > 1) return;
      stolen = pickDrainVictims(await store.listNodes(), 1)[0]!.id;
      await store.setNodeState(stolen, 'draining', clock.now(), clock.now() + 60_000);
    });
    for (const id of ['node-a', 'node-b', 'node-c']) await addReadyNode(vca, id, 'L4');
    interfere();
    const drained = await vca.fleet.drainCount(1);
    expect(drained).toHaveLength(1);
    expect(drained[0]!.id).not.toBe(stolen);
    // The other caller's pick is drained (by it); this one's, empty too, drained and removed; one stays.
    const now = await states(vca.store);
    expect(now[stolen]).toBe('drained');
    expect(now[drained[0]!.id]).toBeUndefined();
    expect(Object.values(now).sort()).toEqual(['drained', 'ready']);
  });

  it('gives up with VCA_ERR_NODE_STATE after five picks all overtaken, having drained nothing itself', async () => {
    const { vca, clock, interfere } = vcaWithInterference(async (store) => {
      const [victim] = pickDrainVictims(await store.listNodes(), 1);
      if (victim) await store.setNodeState(victim.id, 'draining', clock.now(), clock.now() + 60_000);
    });
    for (let i = 0; i < 8; i++) await addReadyNode(vca, `node-${i}`, 'L4');
    interfere();
    await expect(vca.fleet.drainCount(1)).rejects.toMatchObject({ code: 'VCA_ERR_NODE_STATE' });
    // Five picks, five nodes taken by the other caller, none by this one: three stay ready.
    const now = await states(vca.store);
    expect(Object.values(now).filter((state) => state === 'ready')).toHaveLength(3);
  });

  it('drains named nodes all or none', async () => {
    const { vca } = vcaWithInterference(async () => {});
    for (const id of ['node-a', 'node-b']) await addReadyNode(vca, id, 'L4');
    await expect(vca.fleet.drainNodes(['node-a', 'ghost-node'])).rejects.toMatchObject({
      code: 'VCA_ERR_NODE_NOT_FOUND',
      extra: { nodeId: 'ghost-node' },
    });
    expect(await states(vca.store)).toEqual({ 'node-a': 'ready', 'node-b': 'ready' });
    const drained = await vca.fleet.drainNodes(['node-a', 'node-b']);
    expect(drained.map((node) => node.state)).toEqual(['drained', 'drained']);
    expect(await states(vca.store)).toEqual({});
  });
});
