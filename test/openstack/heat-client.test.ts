/**
 * The Heat client and the pre-delete pause finder against a Heat double on 127.0.0.1 that reproduces
 * what Heat 19 does (test/openstack/heat-double.ts), with Keystone (a double too) or without auth.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeatApiError, HeatClient, orchestrationBase, stackFromLink } from '../../src/openstack/heat.js';
import {
  HeatPreDeleteHooks,
  memberNameOfStack,
  pendingPreDeletePauses,
} from '../../src/openstack/heat-pre-delete-hooks.js';
import { KeystoneClient } from '../../src/openstack/keystone.js';
import { HeatDouble } from './heat-double.js';
import { KeystoneDouble } from './keystone-double.js';

let heat: HeatDouble;
let keystone: KeystoneDouble | undefined;

afterEach(async () => {
  await heat?.stop();
  await keystone?.stop();
  keystone = undefined;
});

async function startHeat(): Promise<HeatDouble> {
  heat = new HeatDouble();
  await heat.start();
  return heat;
}

function noAuthClient(): HeatClient {
  return new HeatClient({ endpoint: heat.url, projectId: heat.projectId, auth: null, timeoutMs: 2000 });
}

function hooksOf(client: HeatClient): HeatPreDeleteHooks {
  return new HeatPreDeleteHooks({ client, stack: heat.root });
}

describe('heat client: endpoints and links', () => {
  it('adds /v1/<project> to an API root and keeps a catalog endpoint as it is', () => {
    expect(orchestrationBase('http://heat:8004', 'p1')).toBe('http://heat:8004/v1/p1');
    expect(orchestrationBase('http://heat:8004/', 'p1')).toBe('http://heat:8004/v1/p1');
    expect(orchestrationBase('http://heat:8004/v1', 'p1')).toBe('http://heat:8004/v1/p1');
    expect(orchestrationBase('http://heat:8004/v1/abc/', 'p1')).toBe('http://heat:8004/v1/abc');
  });

  it('reads the stack of an event from its stack link, and the member name from the stack name', () => {
    expect(stackFromLink('http://heat:8004/v1/p/stacks/vca-gpu_nodes-abc-m1mem-xyz/1234-5678')).toEqual({
      name: 'vca-gpu_nodes-abc-m1mem-xyz',
      id: '1234-5678',
    });
    expect(stackFromLink('not a url')).toBeNull();
    expect(stackFromLink('http://heat/v1/p/resources/x')).toBeNull();
    expect(memberNameOfStack('vca-gpu_nodes-2iq6xg3ktbys-ab3kxw4zyk2c-q6mbfx3hypsd')).toBe('ab3kxw4zyk2c');
    expect(memberNameOfStack('single')).toBeNull();
  });
});

describe('heat client: the endpoint from a catalog look-up', () => {
  it('asks the endpoint function on every call (a catalog that changes with the token is followed)', async () => {
    await startHeat();
    heat.addMember();
    let lookups = 0;
    const client = new HeatClient({
      endpoint: async () => {
        lookups += 1;
        return `${heat.url}/v1/${heat.projectId}/`;
      },
      projectId: 'ignored-when-the-endpoint-names-one',
      auth: null,
    });
    expect((await client.listEvents(heat.root, { nestedDepth: 2 })).length).toBeGreaterThan(0);
    await client.listEvents(heat.root);
    expect(lookups).toBe(2);
    expect(heat.calls.every((call) => call.path.startsWith(`/v1/${heat.projectId}/stacks/`))).toBe(true);
  });
});

describe('heat client: finding paused members', () => {
  it('finds the pause on the server inside the member, listed from the root with nested_depth 2', async () => {
    await startHeat();
    const [first, second] = [heat.addMember(), heat.addMember()];
    heat.removeMember(second!);
    const paused = await hooksOf(noAuthClient()).pausedMembers();
    expect(paused).toHaveLength(1);
    expect(paused[0]).toMatchObject({
      stack: { name: second!.stackName, id: second!.stackId },
      member: second!.name,
      resourceName: 'server',
      serverId: second!.serverId,
    });
    expect(Number.isFinite(paused[0]!.pausedAt)).toBe(true);
    expect(first!.hookSet).toBe(false);

    const listing = heat.calls.find((call) => call.path.endsWith('/events'))!;
    expect(listing.path).toBe(`/v1/${heat.projectId}/stacks/${heat.root.name}/${heat.root.id}/events`);
    expect(Object.fromEntries(listing.query)).toMatchObject({
      nested_depth: '2',
      resource_name: 'server',
      sort_keys: 'created_at',
      sort_dir: 'asc',
    });
  });

  it('the pause event carries no stack name and is invisible at the root without nested_depth', async () => {
    await startHeat();
    const member = heat.addMember();
    heat.removeMember(member);
    const response = await fetch(
      `${heat.url}/v1/${heat.projectId}/stacks/${heat.root.name}/${heat.root.id}/events?nested_depth=2&resource_name=server&sort_keys=created_at&sort_dir=asc`,
    );
    const { events } = (await response.json()) as { events: any[] };
    const pause = events.find((event) => event.resource_status_reason.startsWith('DELETE paused'));
    expect(pause).toMatchObject({ resource_status: 'CREATE_COMPLETE', resource_name: 'server' });
    expect(pause.stack_name).toBeUndefined();
    expect(pause.stack_id).toBeUndefined();

    const client = noAuthClient();
    const rootOnly = await client.listEvents(heat.root);
    expect(rootOnly.some((event) => event.reason.startsWith('DELETE paused'))).toBe(false);
  });

  it('reads every page of a long event list (marker paging)', async () => {
    await startHeat();
    const members = Array.from({ length: 6 }, () => heat.addMember());
    heat.removeMember(members[5]!);
    const events = await noAuthClient().listEvents(heat.root, { nestedDepth: 2, pageSize: 3 });
    expect(events).toHaveLength(heat.eventsAt(2).length);
    expect(pendingPreDeletePauses(events, 'server').map((pause) => pause.member)).toEqual([members[5]!.name]);
    expect(heat.calls.filter((call) => call.path.endsWith('/events')).length).toBeGreaterThan(5);
  });

  it('a pause followed by "Hook pre-delete is cleared" (or the delete) is no longer pending', async () => {
    await startHeat();
    const member = heat.addMember();
    heat.removeMember(member);
    const hooks = hooksOf(noAuthClient());
    expect(await hooks.pausedMembers()).toHaveLength(1);
    heat.clearEventLag = 1;
    heat.clearOutside(member);
    // Heat applies the signal asynchronously: the first listing still shows the pause alone.
    expect(await hooks.pausedMembers()).toHaveLength(1);
    expect(await hooks.pausedMembers()).toEqual([]);

    const pause = {
      reason: 'DELETE paused until Hook pre-delete is cleared',
      resourceStatus: 'CREATE_COMPLETE',
    };
    const base = {
      time: '2026-11-29T10:00:00',
      resourceName: 'server',
      physicalResourceId: 'srv',
      stack: { name: 'g-m-x', id: 's1' },
    };
    expect(
      pendingPreDeletePauses(
        [
          { id: 'e1', ...base, ...pause },
          { id: 'e2', ...base, reason: 'state changed', resourceStatus: 'DELETE_IN_PROGRESS' },
        ],
        'server',
      ),
    ).toEqual([]);
    const again = pendingPreDeletePauses(
      [
        { id: 'e1', ...base, ...pause },
        { id: 'e2', ...base, reason: 'Failure occurred while waiting.', resourceStatus: 'CREATE_COMPLETE' },
        { id: 'e3', ...base, ...pause },
      ],
      'server',
    );
    expect(again.map((entry) => entry.pauseId)).toEqual(['e3']);
    // Heat's time without a zone is UTC.
    expect(again[0]!.pausedAt).toBe(Date.parse('2026-11-29T10:00:00Z'));
  });
});

describe('heat client: clearing a hook', () => {
  it('signals unset_hook pre-delete on the server in the member stack; again is "not-set"; a deleted member is "gone"', async () => {
    await startHeat();
    const member = heat.addMember();
    heat.removeMember(member);
    const client = noAuthClient();
    const stack = { name: member.stackName, id: member.stackId };
    heat.clearEventLag = 5;
    expect(await client.unsetHook(stack, 'server', 'pre-delete')).toBe('cleared');
    const [signal] = heat.signalsTo(member);
    expect(signal).toMatchObject({ method: 'POST', body: { unset_hook: 'pre-delete' }, status: 200 });
    expect(signal!.headers['content-type']).toBe('application/json');
    // No auth: no token, the project named for Heat's no-auth middleware.
    expect(signal!.headers['x-auth-token']).toBeUndefined();
    expect(signal!.headers['x-auth-project']).toBe(heat.projectId);

    expect(await client.unsetHook(stack, 'server', 'pre-delete')).toBe('not-set');
    expect(heat.signalsTo(member).at(-1)!.status).toBe(400);

    heat.clearEventLag = 0;
    const other = heat.addMember();
    heat.removeMember(other);
    heat.clearOutside(other);
    expect(other.deleted).toBe(true);
    expect(await client.unsetHook({ name: other.stackName, id: other.stackId }, 'server', 'pre-delete')).toBe(
      'gone',
    );
  });

  it('Heat 5xx and an unreachable Heat are transient errors', async () => {
    await startHeat();
    heat.failNext = 1;
    const client = noAuthClient();
    const error = await client.listEvents(heat.root, { nestedDepth: 2 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HeatApiError);
    expect((error as HeatApiError).status).toBe(503);
    expect((error as HeatApiError).transient).toBe(true);
    await heat.stop();
    const down = await client.listEvents(heat.root).catch((caught: unknown) => caught);
    expect(down).toBeInstanceOf(HeatApiError);
    expect((down as HeatApiError).status).toBe(0);
  });
});

describe('heat client: Keystone authentication', () => {
  async function startBoth() {
    await startHeat();
    keystone = new KeystoneDouble();
    await keystone.start();
    heat.tokens = (token) => keystone!.serviceTokens.has(token);
    const identity = new KeystoneClient({
      url: keystone.url,
      credential: { id: 'app-cred-id', secret: 'app-cred-secret-value' },
    });
    return new HeatClient({ endpoint: heat.url, projectId: heat.projectId, auth: identity, timeoutMs: 2000 });
  }

  it('sends the cached token, and after a 401 authenticates once more and retries once', async () => {
    const client = await startBoth();
    heat.addMember();
    await client.listEvents(heat.root, { nestedDepth: 2 });
    await client.listEvents(heat.root, { nestedDepth: 2 });
    expect(keystone!.callsTo('POST', '/v3/auth/tokens')).toHaveLength(1);
    const tokensSent = heat.calls.map((call) => call.headers['x-auth-token']);
    expect(new Set(tokensSent).size).toBe(1);

    keystone!.revokeServiceTokens();
    await client.listEvents(heat.root, { nestedDepth: 2 });
    expect(keystone!.callsTo('POST', '/v3/auth/tokens')).toHaveLength(2);
    expect(heat.calls.map((call) => call.status)).toEqual([200, 200, 401, 200]);
  });

  it('a second 401 is final (no loop); Keystone down fails the call without reaching Heat', async () => {
    const client = await startBoth();
    heat.tokens = () => false;
    const refused = await client.listEvents(heat.root).catch((caught: unknown) => caught);
    expect((refused as HeatApiError).status).toBe(401);
    expect(heat.calls.map((call) => call.status)).toEqual([401, 401]);
    expect(keystone!.callsTo('POST', '/v3/auth/tokens')).toHaveLength(2);

    // Keystone down while a token is needed (none cached yet): the call never reaches Heat.
    await keystone!.stop();
    const fresh = new HeatClient({
      endpoint: heat.url,
      projectId: heat.projectId,
      auth: new KeystoneClient({
        url: keystone!.url,
        credential: { id: 'app-cred-id', secret: 'app-cred-secret-value' },
        timeoutMs: 1000,
      }),
    });
    const before = heat.calls.length;
    const down = await fresh.listEvents(heat.root).catch((caught: unknown) => caught);
    expect(down).toBeInstanceOf(Error);
    expect(heat.calls.length).toBe(before);
  });
});
