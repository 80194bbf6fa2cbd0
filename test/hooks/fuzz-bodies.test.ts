/**
 * Webhook bodies, fuzzed: any JSON value anywhere in a webhook body is an event or a 4xx naming the
 * field, never a 500. Real bodies (test/fixtures/webhooks and the other shapes the parsers accept) are
 * mutated with a fixed seed (test/hooks/body-mutator.ts: every JSON type in any place, keys deleted,
 * written twice or named after Object.prototype members, nesting thousands deep, huge strings and
 * numbers), then parsed as the gateway parses them: VCA_FUZZ_BODIES per route through the parser
 * functions, VCA_FUZZ_GATEWAY_BODIES per route through a real gateway on port 0. VCA_FUZZ_SEED picks
 * another sequence.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../kit/seeded-random.js';
import { isVcaError } from '../../src/errors.js';
import { parseAodhAlarm, parseContextualize, parseNotifications } from '../../src/hooks/index.js';
import type { OrchestrationEvent } from '../../src/hooks/orchestration-event.js';
import { postHook } from '../support/fleet-snapshot.js';
import { idleTelemetry, startTestGateway, type TestGateway } from '../support/gateway.js';
import { mutate, mutated, type Random, serialize } from './body-mutator.js';

const seed = Number(process.env.VCA_FUZZ_SEED ?? 20_261_120);
const parserBodies = Number(process.env.VCA_FUZZ_BODIES ?? 10_000);
const gatewayBodies = Number(process.env.VCA_FUZZ_GATEWAY_BODIES ?? 500);

const fixtureDir = path.resolve(import.meta.dirname, '../fixtures/webhooks');
const fixture = (name: string): unknown => JSON.parse(readFileSync(path.join(fixtureDir, name), 'utf8'));

type Route = 'contextualize' | 'aodh' | 'notifications';

interface FuzzedBody {
  text: string;
  query: string;
}

const osloScaleDown = fixture('oslo-notification-autoscaling-end-scale-down.json') as Record<string, any>;

/** The bodies each route is fuzzed from: its fixtures and the other shapes its parser accepts. */
const bases: Record<Route, unknown[]> = {
  contextualize: [
    fixture('contextualize-scale-up.json'),
    fixture('contextualize-scale-down-count.json'),
    { eventId: 'fuzz-down-nodes', event: 'scale-down', group: 'g', nodes: ['render-7', { id: 'render-8' }] },
  ],
  aodh: [
    fixture('aodh-event-alarm-autoscaling-end.json'),
    fixture('aodh-threshold-alarm-gpu-temperature.json'),
    fixture('ceilometer-2014-notification-alarm.json'),
    {
      alarm_id: 'fuzz-alarm',
      current: 'alarm',
      previous: 'ok',
      reason: 'scale-down',
      reason_data: {
        type: 'event',
        event: {
          message_id: 'fuzz-event',
          event_type: 'orchestration.autoscaling.end',
          traits: [
            ['groupname', 1, 'g'],
            ['adjustment', 2, -1],
            ['adjustment_type', 1, 'change_in_capacity'],
            ['capacity', 2, 3],
          ],
        },
      },
    },
  ],
  notifications: [
    osloScaleDown,
    fixture('ceilometer-http-publisher-events.json'),
    (fixture('ceilometer-http-publisher-events.json') as unknown[])[1],
    {
      message_id: 'fuzz-object-traits',
      event_type: 'orchestration.autoscaling.end',
      traits: [
        { name: 'groupname', type: 'string', value: 'g' },
        { name: 'adjustment', type: 'integer', value: '-1' },
        { name: 'adjustment_type', dtype: 1, value: 'ChangeInCapacity' },
        { name: 'capacity', type: 0, value: 3 },
      ],
    },
  ],
};

const aodhQueries = [
  '',
  '?action=UP',
  '?action=DOWN',
  '?action=down&action=DOWN',
  '?action=sideways',
  '?action=UP&action=DOWN',
];

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** One fuzzed body for `route`; for notifications a fifth of them are oslo envelopes of a mutated notification. */
function fuzzedBody(route: Route, random: Random): FuzzedBody {
  const query = route === 'aodh' ? pick(random, aodhQueries) : '';
  if (route === 'notifications' && random() < 0.2) {
    const inner = random() < 0.9 ? serialize(mutated(osloScaleDown, random)) : JSON.stringify(osloScaleDown);
    let envelope: unknown = { 'oslo.version': '2.0', 'oslo.message': inner };
    if (random() < 0.3) envelope = mutate(envelope, random);
    return { text: serialize(envelope), query };
  }
  const base = pick(random, bases[route]);
  return { text: random() < 0.03 ? JSON.stringify(base) : serialize(mutated(base, random)), query };
}

function parse(route: Route, value: unknown, query: string): OrchestrationEvent[] {
  if (route === 'contextualize') return [parseContextualize(value)];
  if (route === 'aodh') return [parseAodhAlarm(value, new URLSearchParams(query))];
  return parseNotifications(value);
}

/** 'accepted', 'refused', or what went wrong. */
function judge(route: Route, body: FuzzedBody): 'accepted' | 'refused' | string {
  // The gateway's body reader parses the text; text it cannot parse never reaches a parser.
  const value: unknown = JSON.parse(body.text);
  try {
    for (const event of parse(route, value, body.query)) {
      // What the hook service stores and answers must be plain JSON.
      JSON.stringify(event);
      if (typeof event.idempotencyKey !== 'string' || typeof event.summary !== 'string') {
        return `an event without a key or summary: ${JSON.stringify(event).slice(0, 200)}`;
      }
    }
    return 'accepted';
  } catch (error) {
    if (!isVcaError(error)) return `threw ${String((error as Error)?.stack ?? error).slice(0, 400)}`;
    if (error.status < 400 || error.status >= 500) return `answered ${error.status} ${error.code}`;
    const field = error.extra?.field;
    if (typeof field !== 'string' || field === '') return `${error.code} without a field: ${error.message}`;
    return 'refused';
  }
}

const routes: readonly Route[] = ['contextualize', 'aodh', 'notifications'];

describe('webhook fuzz: the parsers are total', () => {
  it.each(routes)(
    `%s: ${parserBodies} mutated bodies each parse to events or a 4xx naming the field`,
    (route) => {
      const random = seededRandom(seed + routes.indexOf(route));
      const counts = { accepted: 0, refused: 0 };
      const failures: string[] = [];
      for (let i = 0; i < parserBodies; i++) {
        const body = fuzzedBody(route, random);
        const verdict = judge(route, body);
        if (verdict === 'accepted' || verdict === 'refused') counts[verdict]++;
        else if (failures.length < 5)
          failures.push(`#${i} ${verdict}\n  body: ${body.query} ${body.text.slice(0, 300)}`);
        else failures.push('');
      }
      expect(failures.filter(Boolean), `${failures.length} of ${parserBodies} failed (seed ${seed})`).toEqual(
        [],
      );
      // The mutations must reach past the first check, and beyond what the schemas allow.
      expect(counts.accepted).toBeGreaterThan(parserBodies / 50);
      expect(counts.refused).toBeGreaterThan(parserBodies / 10);
    },
  );
});

describe('webhook fuzz: through a real gateway', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway();
    // Nodes the fuzzed scale-downs can drain (ids of the fixtures among them).
    for (const id of ['render-7', 'render-8', 'render-1', 'render-2']) {
      const node = await gw.registerNode(id, 'L4', 1);
      expect((await gw.telemetry(id, node.token, idleTelemetry(1))).status).toBe(200);
    }
  });

  afterAll(async () => gw?.close());

  it.each(routes)(
    `%s: ${gatewayBodies} mutated bodies, not one 5xx, and the gateway stays up`,
    async (route) => {
      const random = seededRandom(seed + 100 + routes.indexOf(route));
      const bodies = Array.from({ length: gatewayBodies }, () => fuzzedBody(route, random));
      const statuses = new Map<number, number>();
      const serverErrors: string[] = [];
      let next = 0;
      const worker = async () => {
        while (next < bodies.length) {
          const body = bodies[next++]!;
          const answer = await postHook(gw, route, body.text, { query: body.query });
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          if (answer.status >= 500) {
            serverErrors.push(
              `${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}\n  body: ${body.text.slice(0, 300)}`,
            );
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      expect(serverErrors.slice(0, 5), `${serverErrors.length} answers were 5xx (seed ${seed})`).toEqual([]);
      expect(statuses.get(200) ?? 0, JSON.stringify([...statuses])).toBeGreaterThan(0);
      expect((await gw.request('none', 'GET', '/healthz')).status).toBe(200);
      const audit = await gw.gateway.vca.store.audit();
      for (const gpu of audit.gpus) expect(gpu.committed).toEqual(gpu.sumOfSessions);
    },
  );
});
