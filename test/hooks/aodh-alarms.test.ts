/**
 * Aodh alarm bodies as Aodh 15's REST notifier sends them (aodh/notifier/rest.py: every field, null
 * when unset) and its re-notifications (`repeat_actions`: the evaluator notifies again while the state
 * stays the same, previous == current, "Remaining as alarm ..."): nulls read as absent, and a firing
 * alarm's re-notifications act at most once per cooldown per alarm, on the embedded store and across
 * two instances sharing a real Redis, with a fake clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idleGpus } from '../../kit/idle-telemetry.js';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { VcaConfig } from '../../src/config/schema.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import { isVcaError } from '../../src/errors.js';
import { HookService } from '../../src/hooks/hook-service.js';
import { parseAodhAlarm } from '../../src/hooks/index.js';
import type { StateStore } from '../../src/state/state-store.js';
import { EmbeddedStore } from '../../src/store/embedded/embedded-store.js';
import { createVca, storeOptions, type Vca } from '../../src/vca.js';
import { createTestRedisStore, freshKeyPrefix } from '../store/redis-factory.js';
import { addReadyNode, FakeClock } from '../support/domain.js';

const down = new URLSearchParams('action=DOWN');

/** A threshold alarm body with every field Aodh sends; `overrides` set some to null or other values. */
function alarmBody(overrides: Record<string, unknown> = {}) {
  return {
    alarm_name: 'vca-gpu-load-low',
    alarm_id: '4c9d2a10-6b1e-4c3e-9d0e-5e2b8f0a1c77',
    severity: 'low',
    previous: 'ok',
    current: 'alarm',
    reason: 'Transition to alarm due to 3 samples outside threshold, most recent: 12.5',
    reason_data: { type: 'threshold', disposition: 'outside', count: 3, most_recent: 12.5 },
    ...overrides,
  };
}

/** What Aodh sends on the next evaluations of a still-firing alarm with repeat_actions. */
function renotification(mostRecent: number) {
  return alarmBody({
    previous: 'alarm',
    current: 'alarm',
    reason: `Remaining as alarm due to 3 samples outside threshold, most recent: ${mostRecent}`,
    reason_data: { type: 'threshold', disposition: 'outside', count: 3, most_recent: mostRecent },
  });
}

describe('aodh: null fields', () => {
  it.each(['alarm_name', 'severity', 'previous', 'reason', 'reason_data'])(
    'accepts %s: null as absent',
    (field) => {
      const event = parseAodhAlarm(alarmBody({ [field]: null }), down);
      expect(event.source).toBe('aodh');
      expect(event.alarm?.id).toBe('4c9d2a10-6b1e-4c3e-9d0e-5e2b8f0a1c77');
      expect(event.summary).not.toContain('null');
    },
  );

  it('accepts every optional field null at once (nothing firing: recorded)', () => {
    const event = parseAodhAlarm(
      {
        alarm_id: 'a-1',
        alarm_name: null,
        severity: null,
        previous: null,
        current: null,
        reason: null,
        reason_data: null,
      },
      down,
    );
    expect(event.action).toEqual({ kind: 'record' });
    expect(event.alarm).toEqual({ id: 'a-1' });
    expect(event.summary).toBe(
      'Aodh alarm a-1 (unknown -> unknown, action=DOWN): the alarm is not firing; recorded, changes no node',
    );
  });

  it('still drains on a firing alarm whose name and severity are null', () => {
    const event = parseAodhAlarm(alarmBody({ alarm_name: null, severity: null }), down);
    expect(event.action).toEqual({ kind: 'drain-count', count: 1 });
  });

  it('accepts null message_id and traits in an event alarm', () => {
    const event = parseAodhAlarm(
      alarmBody({
        reason_data: {
          type: 'event',
          event: { event_type: 'compute.instance.delete.end', message_id: null, traits: null },
        },
      }),
      new URLSearchParams(),
    );
    expect(event.eventType).toBe('compute.instance.delete.end');
  });

  it.each([
    [{ alarm_id: null }, 'alarm_id'],
    [{ severity: 7 }, 'severity'],
    [{ reason_data: 'text' }, 'reason_data'],
    [{ current: ['alarm'] }, 'current'],
  ])('still refuses a wrong type with the field named: %j', (overrides, field) => {
    try {
      parseAodhAlarm(alarmBody(overrides), down);
      expect.unreachable();
    } catch (error) {
      expect(isVcaError(error) && error.code).toBe('VCA_ERR_VALIDATION');
      expect(isVcaError(error) && error.extra?.field).toBe(field);
    }
  });
});

describe('aodh: re-notification keys', () => {
  it('a re-notification is keyed per alarm, whatever its reason; a transition per evaluation', () => {
    const first = parseAodhAlarm(renotification(11), down);
    const second = parseAodhAlarm(renotification(9.5), down);
    expect(first.idempotencyKey).toBe(second.idempotencyKey);
    expect(first.alarmCooldown).toEqual({ key: first.idempotencyKey, repeat: true });
    const transition = parseAodhAlarm(alarmBody(), down);
    expect(transition.idempotencyKey).not.toBe(first.idempotencyKey);
    expect(transition.alarmCooldown).toEqual({ key: first.idempotencyKey, repeat: false });
    expect(first.summary).toContain('re-notification');
  });

  it('the cooldown is per alarm', () => {
    const other = parseAodhAlarm({ ...renotification(11), alarm_id: 'another-alarm' }, down);
    expect(other.idempotencyKey).not.toBe(parseAodhAlarm(renotification(11), down).idempotencyKey);
  });

  it('no cooldown for an alarm that is not firing, nor for an event alarm (each event is news)', () => {
    expect(parseAodhAlarm(alarmBody({ previous: 'ok', current: 'ok' }), down).alarmCooldown).toBeUndefined();
    const eventAlarm = parseAodhAlarm(
      alarmBody({
        previous: 'alarm',
        current: 'alarm',
        reason_data: {
          type: 'event',
          event: { event_type: 'orchestration.autoscaling.end', message_id: 'm-1', traits: [] },
        },
      }),
      down,
    );
    expect(eventAlarm.alarmCooldown).toBeUndefined();
    expect(eventAlarm.idempotencyKey).toBe('notification:m-1');
  });
});

/** One gateway instance's domain and hook service over `store`, on the shared fake clock. */
function instance(
  store: StateStore,
  clock: FakeClock,
  cooldownSeconds: number,
): { vca: Vca; hooks: HookService } {
  const config = loadConfig({ env: {} }) as VcaConfig;
  const vca = createVca({ config, catalog: loadCatalog(config), clock, store, schedule: () => {} });
  const hooks = new HookService({
    store,
    fleet: vca.fleet,
    clock,
    idempotencyTtlMs: 86_400_000,
    alarmRepeatCooldownMs: cooldownSeconds * 1000,
  });
  return { vca, hooks };
}

/** Nodes taken out so far: an empty node drains and leaves at once, so count those still ready. */
async function drainedCount(vca: Vca, of: readonly string[]): Promise<number> {
  const ready = new Set(
    (await vca.store.listNodes()).filter((node) => node.state === 'ready').map((node) => node.id),
  );
  return of.filter((id) => !ready.has(id)).length;
}

/** Keeps the telemetry of the nodes still ready fresh after the fake clock jumped. */
async function refresh(vca: Vca): Promise<void> {
  for (const node of await vca.store.listNodes()) {
    if (node.state === 'ready') await vca.fleet.recordTelemetry(node.id, { gpus: idleGpus(1) });
  }
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
}, 30_000);
afterAll(async () => {
  await redis?.stop();
});

const storeKinds = {
  embedded: async () => {
    const config = loadConfig({ env: {} }) as VcaConfig;
    const store = new EmbeddedStore(storeOptions(config, new CatalogIndex(loadCatalog(config))));
    return [store, store] as const;
  },
  redis: async () => {
    const keyPrefix = freshKeyPrefix();
    return [
      await createTestRedisStore(redis.url, { keyPrefix }),
      await createTestRedisStore(redis.url, { keyPrefix }),
    ] as const;
  },
};

describe.each(Object.keys(storeKinds) as Array<keyof typeof storeKinds>)(
  'aodh re-notifications on the %s store, two instances',
  (kind) => {
    it('act at most once per cooldown per alarm; the transition starts the cooldown', async () => {
      const [storeA, storeB] = await storeKinds[kind]();
      const clock = new FakeClock();
      const a = instance(storeA, clock, 300);
      const b = instance(storeB, clock, 300);
      const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'];
      for (const id of nodes) await addReadyNode(a.vca, id, 'L4');

      const transition = await a.hooks.apply(parseAodhAlarm(alarmBody(), down));
      expect(transition).toMatchObject({ replayed: false, outcome: { action: 'drain-count' } });
      expect(await drainedCount(a.vca, nodes)).toBe(1);

      // Aodh evaluates every 60 s and, with repeat_actions, notifies again each time.
      const answers: boolean[] = [];
      for (let minute = 1; minute <= 11; minute++) {
        clock.advance(60_000);
        await refresh(a.vca);
        const via = minute % 2 === 0 ? a : b;
        answers.push(
          (await via.hooks.apply(parseAodhAlarm(renotification(10 - minute / 10), down))).replayed,
        );
      }
      // Held (answered as a replay) until the cooldown has passed: minute 5 is 300 s after the
      // transition and acts, and minute 10 is 300 s after that.
      expect(answers).toEqual([true, true, true, true, false, true, true, true, true, false, true]);
      expect(await drainedCount(b.vca, nodes)).toBe(3);

      // A new firing (ok -> alarm) always acts, and restarts the cooldown.
      clock.advance(10_000);
      await a.hooks.apply(
        parseAodhAlarm(alarmBody({ previous: 'ok', reason: 'Transition to alarm (again)' }), down),
      );
      expect(await drainedCount(a.vca, nodes)).toBe(4);
      clock.advance(290_000);
      expect((await b.hooks.apply(parseAodhAlarm(renotification(3), down))).replayed).toBe(true);
      expect(await drainedCount(a.vca, nodes)).toBe(4);
    });

    it('a first re-notification with no transition seen (the VCA started while the alarm fired) acts once', async () => {
      const [storeA, storeB] = await storeKinds[kind]();
      const clock = new FakeClock();
      const a = instance(storeA, clock, 120);
      const b = instance(storeB, clock, 120);
      const nodes = ['m1', 'm2', 'm3'];
      for (const id of nodes) await addReadyNode(a.vca, id, 'L4');
      const both = await Promise.all([
        a.hooks.apply(parseAodhAlarm(renotification(5), down)),
        b.hooks.apply(parseAodhAlarm(renotification(5), down)).catch((error: unknown) => error),
      ]);
      // One acts; the other is a replay, or told the same alarm is being applied (409) if it raced.
      const acted = both.filter(
        (answer) => !isVcaError(answer) && !(answer as { replayed: boolean }).replayed,
      );
      expect(acted).toHaveLength(1);
      expect(await drainedCount(a.vca, nodes)).toBe(1);
    });

    it('with repeatCooldownSeconds 0 every re-notification acts', async () => {
      const [storeA, storeB] = await storeKinds[kind]();
      const clock = new FakeClock();
      const a = instance(storeA, clock, 0);
      const b = instance(storeB, clock, 0);
      const nodes = ['k1', 'k2', 'k3'];
      for (const id of nodes) await addReadyNode(a.vca, id, 'L4');
      await a.hooks.apply(parseAodhAlarm(renotification(5), down));
      clock.advance(1);
      await b.hooks.apply(parseAodhAlarm(renotification(4), down));
      expect(await drainedCount(a.vca, nodes)).toBe(2);
    });
  },
);
