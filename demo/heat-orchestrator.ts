/**
 * The demo's simulated orchestrator (`npm run demo -- --autoscale`): a Heat autoscaling group on
 * 127.0.0.1 that answers the VCA's autoscaler signals the way Heat does. A scale-up adds a member (a
 * new simulated VM, which registers through the contextualization hook); a scale-down removes the
 * member Heat would — failed first, then the oldest, then by name — and holds its deletion on the
 * server's pre-delete hook until the VCA clears it (the VCA finds the pause in the event list, like on
 * a real Heat: `DELETE paused until Hook pre-delete is cleared` on `server` in the member's stack).
 * Only what the VCA uses of Heat's API is served: the stack's event list and resource signals.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeNow, listenOnLoopback } from '../kit/loopback-http.js';

export interface SimulatedMember {
  name: string;
  stackName: string;
  stackId: string;
  serverId: string;
  createdAt: string;
  paused: boolean;
}

interface StackEvent {
  id: string;
  stackName: string;
  stackId: string;
  resource: string;
  physicalId: string;
  status: string;
  reason: string;
  time: string;
}

export interface SimulatedHeatOptions {
  /** A new member's VM is up: register its node and start its probe. */
  onMemberCreated: (member: SimulatedMember) => Promise<void>;
  /** The hook was cleared and the VM deleted: stop its probe. */
  onMemberDeleted: (member: SimulatedMember) => void;
  log: (line: string) => void;
}

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
const shortId = () => Array.from({ length: 12 }, () => alphabet[Math.floor(Math.random() * 32)]).join('');
const isoSecond = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

export class SimulatedHeat {
  readonly projectId = 'demo-project';
  readonly stack = { name: 'vca-demo', id: randomUUID() };
  readonly group = 'gpu_nodes';
  readonly members = new Map<string, SimulatedMember>();
  private readonly groupStackName = `${this.stack.name}-${this.group}-${shortId()}`;
  private readonly events: StackEvent[] = [];
  private readonly options: SimulatedHeatOptions;
  private server: Server | null = null;
  url = '';

  constructor(options: SimulatedHeatOptions) {
    this.options = options;
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.handle(request, Buffer.concat(chunks).toString('utf8'), response).catch((error) => {
          this.options.log(`heat: ${(error as Error).message}`);
          if (!response.headersSent) response.writeHead(500).end();
        });
      });
    });
    this.url = await listenOnLoopback(this.server);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await closeNow(server);
  }

  /** A scale-up by one: the member's stack and server are created, then its VM boots and registers. */
  async addMember(createdAtMs = Date.now()): Promise<SimulatedMember> {
    const name = shortId();
    const member: SimulatedMember = {
      name,
      stackName: `${this.groupStackName}-${name}-${shortId()}`,
      stackId: randomUUID(),
      serverId: randomUUID(),
      createdAt: isoSecond(createdAtMs),
      paused: false,
    };
    this.members.set(name, member);
    this.record(member, 'CREATE_COMPLETE', 'state changed');
    await this.options.onMemberCreated(member);
    return member;
  }

  /** A scale-down by one: Heat's own victim (oldest, then name), held on its server's pre-delete hook. */
  removeOne(): SimulatedMember | undefined {
    const victim = [...this.members.values()]
      .filter((member) => !member.paused)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name))[0];
    if (!victim) return undefined;
    victim.paused = true;
    this.record(victim, 'CREATE_COMPLETE', 'DELETE paused until Hook pre-delete is cleared');
    this.options.log(
      `heat: scale-down removes member ${victim.name} (the oldest); paused on its pre-delete hook`,
    );
    return victim;
  }

  private record(member: SimulatedMember, status: string, reason: string): void {
    this.events.push({
      id: randomUUID(),
      stackName: member.stackName,
      stackId: member.stackId,
      resource: 'server',
      physicalId: member.serverId,
      status,
      reason,
      time: isoSecond(Date.now()),
    });
  }

  private async handle(request: IncomingMessage, body: string, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.url);
    const json = (status: number, value?: unknown) => {
      if (value === undefined) response.writeHead(status).end();
      else response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    // The VCA autoscaler's signals (hooks.scaleUpUrl / scaleDownUrl).
    if (request.method === 'POST' && url.pathname === '/scale-up') {
      json(200, {});
      const count = Math.max(
        1,
        Math.min(4, Number((JSON.parse(body || '{}') as { count?: number }).count) || 1),
      );
      this.options.log(`heat: scale-up by ${count} (VCA autoscaler)`);
      for (let index = 0; index < count; index++) await this.addMember();
      return;
    }
    if (request.method === 'POST' && url.pathname === '/scale-down') {
      json(200, {});
      this.removeOne();
      return;
    }
    const base = `/v1/${this.projectId}/stacks/`;
    if (!url.pathname.startsWith(base)) return json(404, { error: { type: 'EntityNotFound' } });
    const [stackName, stackId, ...rest] = url.pathname.slice(base.length).split('/').map(decodeURIComponent);
    if (request.method === 'GET' && rest.join('/') === 'events' && stackId === this.stack.id) {
      const resource = url.searchParams.get('resource_name');
      const marker = url.searchParams.get('marker');
      const limit = Number(url.searchParams.get('limit') ?? '1000');
      let listed = this.events.filter((event) => resource === null || event.resource === resource);
      if (marker) listed = listed.slice(listed.findIndex((event) => event.id === marker) + 1);
      return json(200, {
        events: listed.slice(0, limit).map((event) => {
          const stack = `${this.url}/v1/${this.projectId}/stacks/${event.stackName}/${event.stackId}`;
          return {
            id: event.id,
            event_time: event.time,
            resource_name: event.resource,
            logical_resource_id: event.resource,
            physical_resource_id: event.physicalId,
            resource_status: event.status,
            resource_status_reason: event.reason,
            links: [
              { href: `${stack}/resources/${event.resource}/events/${event.id}`, rel: 'self' },
              { href: stack, rel: 'stack' },
            ],
          };
        }),
      });
    }
    if (request.method === 'POST' && rest.join('/') === 'resources/server/signal') {
      const member = [...this.members.values()].find(
        (entry) => entry.stackId === stackId && entry.stackName === stackName,
      );
      if (!member)
        return json(404, { error: { type: 'EntityNotFound', message: 'The Stack could not be found.' } });
      if (
        !member.paused ||
        (JSON.parse(body || '{}') as { unset_hook?: string }).unset_hook !== 'pre-delete'
      ) {
        return json(400, {
          error: { type: 'InvalidBreakPointHook', message: 'The "pre-delete" hook is not defined' },
        });
      }
      json(200);
      this.record(member, 'CREATE_COMPLETE', 'Hook pre-delete is cleared');
      this.members.delete(member.name);
      this.events.splice(
        0,
        this.events.length,
        ...this.events.filter((event) => event.stackId !== member.stackId),
      );
      this.options.log(`heat: the VCA cleared member ${member.name}'s hook; its VM is deleted`);
      this.options.onMemberDeleted(member);
      return;
    }
    json(404, { error: { type: 'EntityNotFound' } });
  }
}
