/**
 * A Heat orchestration API double on node:http (127.0.0.1, port 0) that records every call. It holds
 * one root stack with an autoscaling group whose members are provider-template stacks, each with a
 * `server` inside, and reproduces what a real Heat 19 does when a scale-down removes a member whose
 * server carries a pre-delete hook (see src/openstack/heat-pre-delete-hooks.ts for the sources):
 *
 * - the pause is an event on `server` in the member's own stack, status `CREATE_COMPLETE`, reason
 *   `DELETE paused until Hook pre-delete is cleared`; the event JSON has no stack name or id, only
 *   links (`self`, `resource`, `stack`, `root_stack`);
 * - the root's event list shows member-stack events only with `nested_depth` >= 2 (root 0, group 1);
 * - `POST .../resources/server/signal {"unset_hook": "pre-delete"}` on the member stack clears it
 *   (event `Hook pre-delete is cleared`), then the server and the member stack are deleted; a hook
 *   that is not set is 400 `InvalidBreakPointHook`, a deleted stack 404 `EntityNotFound`.
 *
 * Authentication: with a `tokens` check, `X-Auth-Token` must pass it (else 401); without, any request
 * is accepted (Heat's no-auth middleware). Failures can be injected (5xx for the next N calls).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeNow, listenOnLoopback } from '../../kit/loopback-http.js';

export interface HeatCall {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: any;
  status: number;
}

interface StoredEvent {
  id: string;
  stackName: string;
  stackId: string;
  resourceName: string;
  physicalResourceId: string;
  action: string;
  status: string;
  reason: string;
  time: string;
  /** 0 root, 1 group, 2 member. */
  depth: number;
}

export interface HeatMember {
  /** Resource name in the group's nested stack (12 lowercase characters, as Heat generates). */
  name: string;
  stackName: string;
  stackId: string;
  serverId: string;
  createdAt: string;
  hookSet: boolean;
  deleted: boolean;
}

const shortIdAlphabet = 'abcdefghijklmnopqrstuvwxyz234567';
let shortIds = 0;
/** A 12-character id in Heat's short-id alphabet (deterministic per process). */
function shortId(): string {
  let value = ++shortIds * 7_919 + 1_000_003;
  let text = '';
  for (let index = 0; index < 12; index++) {
    text += shortIdAlphabet[value % 32];
    value = Math.floor(value / 32) + index * 13;
  }
  return text;
}

export class HeatDouble {
  readonly calls: HeatCall[] = [];
  readonly projectId: string;
  readonly root: { name: string; id: string };
  readonly group: { resource: string; stackName: string; stackId: string };
  readonly members = new Map<string, HeatMember>();
  /** When set, X-Auth-Token must satisfy it. */
  tokens: ((token: string) => boolean) | null = null;
  /** Answer the next N calls with this status (e.g. 503). */
  failNext = 0;
  failStatus = 503;
  /** Answer the next N resource signals with 503 (listings still work). */
  failSignals = 0;
  /** After a clearing, this many event listings still show the pause alone (Heat applies signals asynchronously). */
  clearEventLag = 0;
  /** Clock for event times (the test's fake clock). */
  now: () => number = () => Date.now();
  private readonly events: StoredEvent[] = [];
  private readonly lagging: Array<{ listingsLeft: number; member: HeatMember }> = [];
  private server: Server | null = null;
  url = '';

  constructor(options: { projectId?: string; stackName?: string; group?: string } = {}) {
    this.projectId = options.projectId ?? 'p-vca';
    this.root = { name: options.stackName ?? 'vca', id: randomUUID() };
    const resource = options.group ?? 'gpu_nodes';
    this.group = { resource, stackName: `${this.root.name}-${resource}-${shortId()}`, stackId: randomUUID() };
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => this.handle(request, response));
    this.url = await listenOnLoopback(this.server);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await closeNow(server);
  }

  /** Adds a member (its stack, its server created) as a scale-up would. */
  addMember(): HeatMember {
    const name = shortId();
    const member: HeatMember = {
      name,
      stackName: `${this.group.stackName}-${name}-${shortId()}`,
      stackId: randomUUID(),
      serverId: randomUUID(),
      createdAt: new Date(this.now()).toISOString().replace(/\.\d+Z$/, 'Z'),
      hookSet: false,
      deleted: false,
    };
    this.members.set(name, member);
    this.record(
      0,
      this.root.name,
      this.root.id,
      this.group.resource,
      this.group.stackId,
      'UPDATE',
      'IN_PROGRESS',
      'state changed',
    );
    this.record(
      1,
      this.group.stackName,
      this.group.stackId,
      name,
      member.stackId,
      'CREATE',
      'IN_PROGRESS',
      'state changed',
    );
    this.record(2, member.stackName, member.stackId, 'server', '', 'CREATE', 'IN_PROGRESS', 'state changed');
    this.record(
      2,
      member.stackName,
      member.stackId,
      'server',
      member.serverId,
      'CREATE',
      'COMPLETE',
      'state changed',
    );
    this.record(
      1,
      this.group.stackName,
      this.group.stackId,
      name,
      member.stackId,
      'CREATE',
      'COMPLETE',
      'state changed',
    );
    this.record(
      0,
      this.root.name,
      this.root.id,
      this.group.resource,
      this.group.stackId,
      'UPDATE',
      'COMPLETE',
      'state changed',
    );
    return member;
  }

  /**
   * A scale-down removing `member`: the group deletes the member's stack, which stops at the server's
   * pre-delete hook. The member resource in the group goes DELETE_IN_PROGRESS; the pause is on the server.
   */
  removeMember(member: HeatMember): void {
    member.hookSet = true;
    this.record(
      1,
      this.group.stackName,
      this.group.stackId,
      member.name,
      member.stackId,
      'DELETE',
      'IN_PROGRESS',
      'state changed',
    );
    this.record(
      2,
      member.stackName,
      member.stackId,
      'server',
      member.serverId,
      'CREATE',
      'COMPLETE',
      'DELETE paused until Hook pre-delete is cleared',
    );
  }

  /** Someone else (an operator with the CLI) clears the hook. */
  clearOutside(member: HeatMember): void {
    this.clearHook(member);
  }

  /** Events of the root listing as Heat would answer them (for assertions). */
  eventsAt(depth: number): StoredEvent[] {
    return this.events.filter((event) => event.depth <= depth);
  }

  signalsTo(member: HeatMember): HeatCall[] {
    return this.calls.filter(
      (call) =>
        call.method === 'POST' &&
        call.path ===
          `/v1/${this.projectId}/stacks/${member.stackName}/${member.stackId}/resources/server/signal`,
    );
  }

  private record(
    depth: number,
    stackName: string,
    stackId: string,
    resourceName: string,
    physicalResourceId: string,
    action: string,
    status: string,
    reason: string,
  ): void {
    this.events.push({
      id: randomUUID(),
      stackName,
      stackId,
      resourceName,
      physicalResourceId,
      action,
      status,
      reason,
      time: new Date(this.now()).toISOString().replace(/\.\d+Z$/, 'Z'),
      depth,
    });
  }

  private clearHook(member: HeatMember): void {
    member.hookSet = false;
    if (this.clearEventLag > 0) {
      this.lagging.push({ listingsLeft: this.clearEventLag, member });
      return;
    }
    this.finishDelete(member);
  }

  private finishDelete(member: HeatMember): void {
    this.record(
      2,
      member.stackName,
      member.stackId,
      'server',
      member.serverId,
      'CREATE',
      'COMPLETE',
      'Hook pre-delete is cleared',
    );
    this.record(
      2,
      member.stackName,
      member.stackId,
      'server',
      member.serverId,
      'DELETE',
      'IN_PROGRESS',
      'state changed',
    );
    this.record(
      2,
      member.stackName,
      member.stackId,
      'server',
      member.serverId,
      'DELETE',
      'COMPLETE',
      'state changed',
    );
    this.record(
      1,
      this.group.stackName,
      this.group.stackId,
      member.name,
      member.stackId,
      'DELETE',
      'COMPLETE',
      'state changed',
    );
    member.deleted = true;
    // Events of a deleted stack are no longer listed (Heat lists events of live stacks only).
    for (let index = this.events.length - 1; index >= 0; index--) {
      if (this.events[index]!.stackId === member.stackId) this.events.splice(index, 1);
    }
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {}
      const url = new URL(request.url ?? '/', 'http://heat');
      const call: HeatCall = {
        method: request.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: request.headers,
        body,
        status: 0,
      };
      this.calls.push(call);
      const answer = (status: number, payload?: unknown) => {
        call.status = status;
        if (payload === undefined) response.writeHead(status).end();
        else response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
      };
      if (this.failNext > 0) {
        this.failNext -= 1;
        return answer(this.failStatus, heatError(this.failStatus, 'HTTPServiceUnavailable', 'engine busy'));
      }
      if (this.tokens) {
        const token = request.headers['x-auth-token'];
        if (typeof token !== 'string' || !this.tokens(token)) {
          return answer(401, { error: { message: 'Authentication required', type: 'Unauthorized' } });
        }
      }
      const base = `/v1/${this.projectId}/stacks/`;
      if (!call.path.startsWith(base)) return answer(404, heatError(404, 'EntityNotFound', 'no such path'));
      const parts = call.path.slice(base.length).split('/').map(decodeURIComponent);
      const [stackName, stackId, ...rest] = parts;
      if (call.method === 'GET' && rest.length === 1 && rest[0] === 'events') {
        if (stackName !== this.root.name || stackId !== this.root.id) {
          return answer(
            404,
            heatError(404, 'EntityNotFound', `The Stack (${stackName}) could not be found.`),
          );
        }
        return answer(200, { events: this.list(call.query) });
      }
      if (call.method === 'POST' && rest.length === 3 && rest[0] === 'resources' && rest[2] === 'signal') {
        return this.signal(stackName!, stackId!, rest[1]!, body, answer);
      }
      return answer(404, heatError(404, 'EntityNotFound', 'not found'));
    });
  }

  private signal(
    stackName: string,
    stackId: string,
    resourceName: string,
    body: any,
    answer: (status: number, payload?: unknown) => void,
  ) {
    if (this.failSignals > 0) {
      this.failSignals -= 1;
      return answer(503, heatError(503, 'HTTPServiceUnavailable', 'engine busy'));
    }
    const member = [...this.members.values()].find(
      (candidate) => candidate.stackName === stackName && candidate.stackId === stackId,
    );
    if (!member || member.deleted) {
      return answer(404, heatError(404, 'EntityNotFound', `The Stack (${stackName}) could not be found.`));
    }
    if (resourceName !== 'server') {
      return answer(
        404,
        heatError(404, 'ResourceNotFound', `The Resource (${resourceName}) could not be found.`),
      );
    }
    if (body?.unset_hook !== undefined) {
      if (body.unset_hook !== 'pre-delete' || !member.hookSet) {
        return answer(
          400,
          heatError(
            400,
            'InvalidBreakPointHook',
            `The "${body.unset_hook}" hook is not defined on Server "server"`,
          ),
        );
      }
      this.clearHook(member);
      return answer(200);
    }
    return answer(400, heatError(400, 'ResourceActionNotSupported', 'signal not supported'));
  }

  private list(query: URLSearchParams): object[] {
    for (const entry of this.lagging.splice(0)) {
      entry.listingsLeft -= 1;
      if (entry.listingsLeft < 0) this.finishDelete(entry.member);
      else this.lagging.push(entry);
    }
    const depth = Number(query.get('nested_depth') ?? '0');
    const resourceName = query.get('resource_name');
    let selected = this.events.filter(
      (event) => event.depth <= depth && (resourceName === null || event.resourceName === resourceName),
    );
    // Heat's default order is newest first; asked for created_at ascending it is insertion order.
    if (!(query.get('sort_keys') === 'created_at' && query.get('sort_dir') === 'asc'))
      selected = selected.reverse();
    const marker = query.get('marker');
    if (marker) {
      const at = selected.findIndex((event) => event.id === marker);
      selected = at === -1 ? [] : selected.slice(at + 1);
    }
    const limit = query.get('limit');
    if (limit) selected = selected.slice(0, Number(limit));
    const self = this.url;
    return selected.map((event) => {
      const stack = `${self}/v1/${this.projectId}/stacks/${event.stackName}/${event.stackId}`;
      return {
        id: event.id,
        event_time: event.time,
        resource_name: event.resourceName,
        logical_resource_id: event.resourceName,
        physical_resource_id: event.physicalResourceId,
        resource_status: `${event.action}_${event.status}`,
        resource_status_reason: event.reason,
        links: [
          { href: `${stack}/resources/${event.resourceName}/events/${event.id}`, rel: 'self' },
          { href: `${stack}/resources/${event.resourceName}`, rel: 'resource' },
          { href: stack, rel: 'stack' },
          ...(depth > 0
            ? [
                {
                  href: `${self}/v1/${this.projectId}/stacks/${this.root.name}/${this.root.id}`,
                  rel: 'root_stack',
                },
              ]
            : []),
        ],
      };
    });
  }
}

function heatError(code: number, type: string, message: string) {
  return { code, error: { message, traceback: null, type }, explanation: message, title: type };
}
