/**
 * A Keystone v3 double on node:http (127.0.0.1, port 0) that records every call. It issues tokens for
 * application credentials it knows, validates subject tokens it was told about, and can be switched
 * to answer 401, 5xx, malformed JSON or to revoke the token it issued last. Shapes follow the Identity
 * API v3 reference (https://docs.openstack.org/api-ref/identity/v3/).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeNow, listenOnLoopback } from '../../kit/loopback-http.js';

export interface RecordedCall {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
}

export interface SubjectToken {
  expiresAt: string;
  projectId: string;
  projectName?: string;
  roles: string[];
  trustId?: string;
}

export type AuthBehaviour = 'issue' | 'unauthorized' | 'server-error' | 'malformed' | 'no-header';

export class KeystoneDouble {
  readonly calls: RecordedCall[] = [];
  /** What POST /v3/auth/tokens does next. */
  authBehaviour: AuthBehaviour = 'issue';
  /** expires_at of the next token issued. */
  tokenExpiresAt = '2030-01-01T12:00:00.000000Z';
  /** Answer to GET /v3/auth/tokens when not 200/404: set to force 5xx. */
  validationStatus: number | null = null;
  /** Tokens the double accepts as X-Auth-Token; issuing adds, revoke() removes. */
  readonly serviceTokens = new Set<string>();
  readonly subjects = new Map<string, SubjectToken>();
  readonly credentials = new Map<string, string>([['app-cred-id', 'app-cred-secret-value']]);
  private issued = 0;
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => this.handle(request, response));
    this.url = `${await listenOnLoopback(this.server)}/v3`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await closeNow(server);
  }

  /** Revokes every service token issued so far (the next authorised call gets 401). */
  revokeServiceTokens(): void {
    this.serviceTokens.clear();
  }

  callsTo(method: string, path: string): RecordedCall[] {
    return this.calls.filter((call) => call.method === method && call.path.split('?')[0] === path);
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
      const call = { method: request.method ?? '', path: request.url ?? '', headers: request.headers, body };
      this.calls.push(call);
      const path = call.path.split('?')[0];
      if (path === '/v3/auth/tokens' && call.method === 'POST') return this.authenticate(call, response);
      if (path === '/v3/auth/tokens' && call.method === 'GET') return this.validate(call, response);
      if (path === '/v3/probe') return this.probe(call, response);
      response.writeHead(404).end();
    });
  }

  private authenticate(call: RecordedCall, response: ServerResponse): void {
    if (this.authBehaviour === 'unauthorized') {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({ error: { code: 401, title: 'Unauthorized', message: 'bad credential' } }),
      );
      return;
    }
    if (this.authBehaviour === 'server-error') {
      response.writeHead(503, { 'content-type': 'text/plain' }).end('keystone is restarting');
      return;
    }
    const identity = call.body?.auth?.identity;
    const credential = identity?.application_credential;
    const known =
      identity?.methods?.[0] === 'application_credential' &&
      ((typeof credential?.id === 'string' && this.credentials.get(credential.id) === credential.secret) ||
        (typeof credential?.name === 'string' &&
          (credential.user?.id || credential.user?.name) &&
          this.credentials.get(credential.name) === credential.secret));
    if (!known) {
      response.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":401}}');
      return;
    }
    this.issued += 1;
    const token = `gAAAAservice-token-${this.issued}`;
    this.serviceTokens.add(token);
    if (this.authBehaviour === 'malformed') {
      response.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': token });
      response.end('{"token": {"expires_at": ');
      return;
    }
    response.writeHead(201, {
      'content-type': 'application/json',
      ...(this.authBehaviour === 'no-header' ? {} : { 'x-subject-token': token }),
    });
    response.end(
      JSON.stringify({
        token: {
          methods: ['application_credential'],
          expires_at: this.tokenExpiresAt,
          issued_at: '2029-12-31T12:00:00.000000Z',
          project: { id: 'p-vca', name: 'vca', domain: { id: 'default', name: 'Default' } },
          roles: [{ id: 'r1', name: 'member' }],
          catalog: [
            {
              type: 'orchestration',
              name: 'heat',
              id: 's1',
              endpoints: [
                {
                  id: 'e1',
                  interface: 'public',
                  region: 'RegionOne',
                  region_id: 'RegionOne',
                  url: 'http://heat.one:8004/v1/p-vca/',
                },
                {
                  id: 'e2',
                  interface: 'internal',
                  region: 'RegionOne',
                  region_id: 'RegionOne',
                  url: 'http://heat.internal:8004/v1/p-vca',
                },
                {
                  id: 'e3',
                  interface: 'public',
                  region: 'RegionTwo',
                  region_id: 'RegionTwo',
                  url: 'http://heat.two:8004/v1/p-vca',
                },
              ],
            },
            { type: 'identity', name: 'keystone', id: 's2', endpoints: [] },
          ],
        },
      }),
    );
  }

  private validate(call: RecordedCall, response: ServerResponse): void {
    const serviceToken = call.headers['x-auth-token'];
    if (typeof serviceToken !== 'string' || !this.serviceTokens.has(serviceToken)) {
      response.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":401}}');
      return;
    }
    if (this.validationStatus !== null) {
      response.writeHead(this.validationStatus).end('busy');
      return;
    }
    const subject = call.headers['x-subject-token'];
    const known = typeof subject === 'string' ? this.subjects.get(subject) : undefined;
    if (!known) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":404}}');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json', 'x-subject-token': subject as string });
    response.end(
      JSON.stringify({
        token: {
          methods: ['token'],
          expires_at: known.expiresAt,
          user: { id: 'aodh-user', name: 'aodh', domain: { id: 'default', name: 'Default' } },
          project: {
            id: known.projectId,
            name: known.projectName ?? null,
            domain: { id: 'default', name: 'Default' },
          },
          roles: known.roles.map((name, index) => ({ id: `role-${index}`, name })),
          ...(known.trustId ? { 'OS-TRUST:trust': { id: known.trustId, impersonation: false } } : {}),
        },
      }),
    );
  }

  /** An authorised resource: 200 with the token it saw, 401 for a token not (or no longer) valid. */
  private probe(call: RecordedCall, response: ServerResponse): void {
    const token = call.headers['x-auth-token'];
    if (typeof token !== 'string' || !this.serviceTokens.has(token)) {
      response.writeHead(401).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
  }
}
