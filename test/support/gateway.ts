/**
 * Test support: a real gateway on port 0 (in this process, with a fake clock for leases and drain
 * deadlines) plus small HTTP/WebSocket clients and helpers that sign webhooks and register nodes.
 */
import { type Logger, pino } from 'pino';
import WebSocket from 'ws';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { VcaConfig } from '../../src/config/schema.js';
import { createStore } from '../../src/create-store.js';
import { signBody } from '../../src/http/credentials.js';
import { Gateway } from '../../src/http/gateway.js';
import { FakeClock } from './domain.js';

/** Idle telemetry for GPUs 0..count-1 (the kit's, under the name the gateway tests use). */
export { idleGpus as idleTelemetry } from '../../kit/idle-telemetry.js';

import { callAs } from './http-call.js';

export const testCredentials = {
  gamerToken: 'gamer-token-0123456789abcdef',
  operatorToken: 'operator-token-0123456789abcdef',
  orchestratorSecret: 'orchestrator-secret-0123456789',
  masterSecret: 'master-secret-0123456789abcdef-0123456789abcdef',
};

export interface TestGateway {
  gateway: Gateway;
  clock: FakeClock;
  url: string;
  wsUrl: string;
  /** fetch with the role's credentials; body objects are sent as JSON. */
  request(
    role: 'gamer' | 'operator' | 'none' | { token: string },
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: any; headers: Headers }>;
  /** POST a webhook the way the orchestrator does (signed for contextualize, secret otherwise). */
  hook(
    kind: 'contextualize' | 'aodh' | 'notifications',
    body: unknown,
    query?: string,
  ): Promise<{ status: number; body: any }>;
  /** Registers a node through the contextualize webhook and returns its token and ticket key. */
  registerNode(
    id: string,
    model: string,
    count?: number,
    labels?: Record<string, string>,
    /** The autoscaling group (default `test-group`) and, optionally, the node's Heat membership. */
    membership?: { group?: string; orchestrator?: Record<string, unknown> },
  ): Promise<{ token: string; ticketKey: string }>;
  /** Sends telemetry for a node as its probe would. */
  telemetry(id: string, token: string, gpus: readonly object[]): Promise<{ status: number; body: any }>;
  /** Runs the periodic work now (after moving the fake clock). */
  tick(): Promise<void>;
  close(): Promise<void>;
}

let eventCounter = 0;

/** A real gateway on a free port with the test credentials; `logger` receives its log lines (silent by default). */
export async function startTestGateway(
  overrides: Record<string, unknown> = {},
  logger: Logger = pino({ level: 'silent' }),
): Promise<TestGateway> {
  const config = loadConfig({
    env: {},
    overrides: {
      server: { host: '127.0.0.1', port: 0, requestsPerSecondPerAddress: 100_000, requestBurst: 100_000 },
      auth: {
        gamerTokens: [testCredentials.gamerToken],
        operatorTokens: [testCredentials.operatorToken],
        orchestratorSecret: testCredentials.orchestratorSecret,
        masterSecret: testCredentials.masterSecret,
      },
      log: { level: 'silent' },
      ...overrides,
    },
  }) as VcaConfig;
  const clock = new FakeClock(Date.now());
  // `store: {kind: 'redis', redis: {url, keyPrefix}}` in the overrides: a Redis store and its event
  // relay, built as the gateway process builds them (several test gateways may share one prefix).
  const shared = config.store.kind === 'redis' ? await createStore(config, logger) : {};
  const gateway = new Gateway({
    config,
    catalog: loadCatalog(config),
    logger,
    clock,
    ...shared,
  });
  const port = await gateway.start();
  const url = `http://127.0.0.1:${port}`;

  const request: TestGateway['request'] = (role, method, path, body, headers = {}) =>
    callAs(url, testCredentials, role, method, path, body, headers);

  const hook: TestGateway['hook'] = async (kind, body, query = '') => {
    const raw = JSON.stringify(body);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (kind === 'contextualize') {
      const t = Math.floor(clock.now() / 1000);
      headers['x-vca-signature'] = `t=${t},v1=${signBody(testCredentials.orchestratorSecret, t, raw)}`;
    } else {
      headers['x-vca-hook-secret'] = testCredentials.orchestratorSecret;
    }
    const result = await request('none', 'POST', `/v1/hooks/${kind}${query}`, raw, headers);
    return { status: result.status, body: result.body };
  };

  const registerNode: TestGateway['registerNode'] = async (
    id,
    model,
    count = 1,
    labels = {},
    membership = {},
  ) => {
    const node: Record<string, unknown> = {
      id,
      host: '127.0.0.1',
      port: 5900,
      protocol: 'webrtc',
      gpus: [{ model, count }],
      labels,
    };
    if (membership.orchestrator !== undefined) node.orchestrator = membership.orchestrator;
    const result = await hook('contextualize', {
      eventId: `test-up-${id}-${++eventCounter}`,
      event: 'scale-up',
      group: membership.group ?? 'test-group',
      nodes: [node],
    });
    if (result.status !== 200) throw new Error(`registration failed: ${JSON.stringify(result.body)}`);
    const registered = result.body.registered[0];
    return { token: registered.token, ticketKey: registered.ticketKey };
  };

  const telemetry: TestGateway['telemetry'] = async (id, token, gpus) => {
    const result = await request({ token }, 'PUT', `/v1/nodes/${id}/telemetry`, { gpus });
    return { status: result.status, body: result.body };
  };

  return {
    gateway,
    clock,
    url,
    wsUrl: `ws://127.0.0.1:${port}`,
    request,
    hook,
    registerNode,
    telemetry,
    async tick() {
      await gateway.vca.sessions.tick();
      await gateway.vca.fleet.tick();
    },
    close: () => gateway.stop(),
  };
}

/** A WebSocket client that queues incoming JSON messages and lets a test await the next of a type. */
export class PlayClient {
  readonly socket: WebSocket;
  private readonly inbox: any[] = [];
  private waiters: Array<{ type: string; resolve: (message: any) => void }> = [];
  closedWith: number | null = null;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      const index = this.waiters.findIndex((waiter) => waiter.type === message.type || waiter.type === '*');
      if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(message);
      else this.inbox.push(message);
    });
    socket.on('close', (code) => {
      this.closedWith = code;
    });
  }

  static connect(wsUrl: string, token = testCredentials.gamerToken): Promise<PlayClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${wsUrl}/v1/play?token=${encodeURIComponent(token)}`);
      socket.once('open', () => resolve(new PlayClient(socket)));
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`upgrade refused: ${response.statusCode}`)),
      );
    });
  }

  send(message: unknown): void {
    this.socket.send(JSON.stringify(message));
  }

  /** The next message of `type` ('*' for any), waiting up to `timeoutMs`. */
  next(type = '*', timeoutMs = 5000): Promise<any> {
    const index = this.inbox.findIndex((message) => type === '*' || message.type === type);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = { type, resolve };
      this.waiters.push(waiter);
      setTimeout(() => {
        this.waiters = this.waiters.filter((other) => other !== waiter);
        reject(
          new Error(`no "${type}" message within ${timeoutMs} ms; inbox: ${JSON.stringify(this.inbox)}`),
        );
      }, timeoutMs).unref();
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.readyState === WebSocket.CLOSED) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}
