/**
 * Distributed mode: an Aodh alarm's re-notifications (`repeat_actions`) act at most once per cooldown
 * whichever gateway process receives them, since the cooldown is a key in the shared Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayProcess,
  gatewayCredentials,
  reportIdle,
  stopAllGatewayProcesses,
} from '../../kit/gateway-process.js';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import {
  api,
  defineGatewayGroup,
  type GatewayGroup,
  registerNode,
  startGroupGateway,
} from '../support/gateway-group.js';

let redis: RedisServer;
let cluster: GatewayGroup;
let a: GatewayProcess;
let b: GatewayProcess;

beforeAll(async () => {
  redis = await startRedisServer();
  cluster = defineGatewayGroup(redis.url, { hooks: { aodh: { repeatCooldownSeconds: 300 } } });
  [a, b] = await Promise.all([startGroupGateway(cluster, 'A'), startGroupGateway(cluster, 'B')]);
}, 60_000);

afterAll(async () => {
  await stopAllGatewayProcesses();
  cluster?.dispose();
  await redis?.stop();
});

function alarm(previous: string, reason: string) {
  return {
    alarm_name: null,
    alarm_id: 'c0ffee00-0000-4000-8000-000000000001',
    severity: null,
    previous,
    current: 'alarm',
    reason,
    reason_data: { type: 'threshold', disposition: 'outside', count: 3 },
  };
}

function postAlarm(gateway: GatewayProcess, body: unknown) {
  return api(gateway.url, 'none', 'POST', '/v1/hooks/aodh?action=DOWN', body, {
    'x-vca-hook-secret': gatewayCredentials.orchestratorSecret,
  });
}

async function readyIds(gateway: GatewayProcess): Promise<string[]> {
  const answer = await api(gateway.url, 'operator', 'GET', '/v1/nodes');
  return answer.body.nodes.filter((node: any) => node.state === 'ready').map((node: any) => node.id);
}

describe('distributed: aodh re-notification cooldown', () => {
  it('a transition through A acts; re-notifications through B and A within the cooldown do not', async () => {
    for (const id of ['r1', 'r2', 'r3', 'r4']) await reportIdle(a.url, await registerNode(a.url, id));
    const transition = await postAlarm(
      a,
      alarm('ok', 'Transition to alarm due to 3 samples, most recent: 9'),
    );
    expect(transition.status, JSON.stringify(transition.body)).toBe(200);
    expect(transition.body).toMatchObject({ replayed: false, action: 'drain-count' });
    expect(transition.body.draining).toHaveLength(1);
    const repeats = [
      await postAlarm(b, alarm('alarm', 'Remaining as alarm due to 3 samples, most recent: 8')),
      await postAlarm(a, alarm('alarm', 'Remaining as alarm due to 3 samples, most recent: 7')),
      await postAlarm(b, alarm('alarm', 'Remaining as alarm due to 3 samples, most recent: 6')),
    ];
    for (const repeat of repeats) {
      expect(repeat.status).toBe(200);
      expect(repeat.body).toMatchObject({ replayed: true, draining: transition.body.draining });
    }
    expect(await readyIds(a)).toHaveLength(3);
    expect(await readyIds(b)).toEqual(await readyIds(a));
  }, 60_000);
});
