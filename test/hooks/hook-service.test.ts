/**
 * What the idempotency key of a webhook delivery holds: an applied result (replays get it back), never
 * a refusal (4xx: the all-or-nothing effect changed nothing, so the next delivery is judged afresh),
 * and a store failure (5xx: it may have applied, so replays get the failure rather than a second try).
 */
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { VcaConfig } from '../../src/config/schema.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import { VcaError } from '../../src/errors.js';
import { HookService } from '../../src/hooks/hook-service.js';
import { parseContextualize } from '../../src/hooks/index.js';
import { EmbeddedStore } from '../../src/store/embedded/embedded-store.js';
import { createVca, storeOptions } from '../../src/vca.js';
import { addReadyNode, FakeClock } from '../support/domain.js';

function hookServiceWith(failDrains: () => boolean) {
  const config = loadConfig({ env: {}, overrides: {} }) as VcaConfig;
  const catalog = loadCatalog(config);
  const inner = new EmbeddedStore(storeOptions(config, new CatalogIndex(catalog)));
  const store = new Proxy(inner, {
    get(target, name) {
      if (name === 'drainNodes' && failDrains()) {
        return async () => {
          throw new VcaError('VCA_ERR_STORE_UNAVAILABLE', 'Redis did not answer');
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const clock = new FakeClock();
  const vca = createVca({ config, catalog, clock, store, schedule: () => {} });
  const hooks = new HookService({ store, fleet: vca.fleet, clock, idempotencyTtlMs: 60_000 });
  return { vca, hooks };
}

const scaleDown = (nodes: string[]) =>
  parseContextualize({ eventId: 'e1', event: 'scale-down', group: 'g', nodes });

describe('hook service: what a delivery key remembers', () => {
  it('not a refusal: the same event id is applied once corrected, then replayed', async () => {
    const { vca, hooks } = hookServiceWith(() => false);
    await addReadyNode(vca, 'node-a', 'L4');
    const refused = await hooks.apply(scaleDown(['node-a', 'ghost-node']));
    expect(refused).toMatchObject({
      replayed: false,
      outcome: { error: { code: 'VCA_ERR_NODE_NOT_FOUND', status: 404, field: 'nodes.1' }, draining: [] },
    });
    expect((await vca.store.getNode('node-a'))?.state).toBe('ready');
    const applied = await hooks.apply(scaleDown(['node-a']));
    expect(applied).toMatchObject({
      replayed: false,
      outcome: { error: null, draining: [{ id: 'node-a' }] },
    });
    const replay = await hooks.apply(scaleDown(['node-a']));
    expect(replay).toMatchObject({ replayed: true, outcome: applied.outcome });
  });

  it('a store failure: replays get the failure back, since the step may have run', async () => {
    let failing = true;
    const { vca, hooks } = hookServiceWith(() => failing);
    await addReadyNode(vca, 'node-a', 'L4');
    const failed = await hooks.apply(scaleDown(['node-a']));
    expect(failed.outcome.error).toMatchObject({ code: 'VCA_ERR_STORE_UNAVAILABLE', status: 503 });
    failing = false;
    const replay = await hooks.apply(scaleDown(['node-a']));
    expect(replay).toMatchObject({
      replayed: true,
      outcome: { error: { code: 'VCA_ERR_STORE_UNAVAILABLE' } },
    });
    expect((await vca.store.getNode('node-a'))?.state).toBe('ready');
  });
});

describe('hook service: a delivery that arrives while the same one is applied', () => {
  it('is told to come back (409, Retry-After) instead of an empty "replayed" answer', async () => {
    const { vca, hooks } = hookServiceWith(() => false);
    await addReadyNode(vca, 'node-a', 'L4');
    // The first delivery has claimed the key and is still applying.
    await vca.store.rememberWebhook('hook:contextualize:e1', { processing: true }, 60_000, vca.clock.now());
    const event = scaleDown(['node-a']);
    expect(event.idempotencyKey).toBe('contextualize:e1');
    const error = await hooks.apply(event).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(VcaError);
    expect((error as VcaError).code).toBe('VCA_ERR_WEBHOOK_IN_PROGRESS');
    expect((error as VcaError).extra).toMatchObject({ retryAfterSeconds: 1 });
    expect((await vca.store.getNode('node-a'))?.state).toBe('ready');
  });

  it('after an unexpected failure the key is released, so the next delivery is applied', async () => {
    let broken = true;
    const { vca, hooks } = hookServiceWith(() => false);
    await addReadyNode(vca, 'node-a', 'L4');
    const fleet = vca.fleet as unknown as { drainNodes: (ids: string[]) => Promise<unknown> };
    const original = fleet.drainNodes.bind(vca.fleet);
    fleet.drainNodes = async (ids) => {
      if (broken) throw new TypeError('a bug');
      return original(ids);
    };
    await expect(hooks.apply(scaleDown(['node-a']))).rejects.toThrow('a bug');
    broken = false;
    const retried = await hooks.apply(scaleDown(['node-a']));
    expect(retried.replayed).toBe(false);
    expect(retried.outcome.draining.map((node) => node.id)).toEqual(['node-a']);
  });
});
