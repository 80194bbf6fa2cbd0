import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually } from '../../kit/polling.js';
import { rawRequest } from '../support/raw-http.js';
import {
  type ConsoleGateway,
  freshConsoleBuild,
  idleGpus,
  startConsoleGateway,
  testCredentials,
} from './console-harness.js';

/** Polls until `check` answers something truthy. */
function waitFor<T>(check: () => T | undefined | false, options: { timeoutMs?: number } = {}): Promise<T> {
  return eventually(
    async () => {
      const value = check();
      if (!value) throw new Error('not yet');
      return value;
    },
    { timeoutMs: options.timeoutMs ?? 5000, intervalMs: 10 },
  );
}

let build: Awaited<ReturnType<typeof freshConsoleBuild>>;
let gw: ConsoleGateway;

beforeAll(async () => {
  build = await freshConsoleBuild();
  gw = await startConsoleGateway(build.directory);
});

afterAll(async () => {
  await gw?.close();
  build?.remove();
});

function assetNames(): { script: string; stylesheet: string } {
  const script = build.files.find((file) => file.name.endsWith('.js'))!.name.replace('assets/', '');
  const stylesheet = build.files.find((file) => file.name.endsWith('.css'))!.name.replace('assets/', '');
  return { script, stylesheet };
}

describe('console: static files', () => {
  it('serves the page at /console and /console/ as no-cache HTML under a strict CSP', async () => {
    for (const page of ['/console', '/console/']) {
      const response = await fetch(gw.url + page);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(response.headers.get('cache-control')).toBe('no-cache');
      const csp = response.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const html = await response.text();
      expect(html).toBe(readFileSync(path.join(build.directory, 'index.html'), 'utf8'));
      expect(html).not.toMatch(/https?:\/\//);
    }
  });

  it('serves hashed assets as immutable with their content types', async () => {
    const { script, stylesheet } = assetNames();
    const js = await fetch(`${gw.url}/console/assets/${script}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(
      Buffer.from(await js.arrayBuffer()).equals(readFileSync(path.join(build.directory, 'assets', script))),
    ).toBe(true);
    const css = await fetch(`${gw.url}/console/assets/${stylesheet}`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await css.text()).length).toBeGreaterThan(1000);
  });

  it('answers HEAD with the headers and length of GET and no body', async () => {
    const { script } = assetNames();
    const size = readFileSync(path.join(build.directory, 'assets', script)).length;
    // uWS v20.30 does not act on `Connection: close` after a HEAD: read what came within 500 ms.
    const answer = await rawRequest(
      gw.port,
      `HEAD /console/assets/${script} HTTP/1.1\r\nHost: vca\r\nConnection: close\r\n\r\n`,
      { waitMs: 500 },
    );
    expect(answer.status).toBe(200);
    expect(answer.text).toMatch(new RegExp(`content-length: ${size}\\r\\n`, 'i'));
    expect(answer.text).toMatch(/content-type: text\/javascript/i);
    expect(answer.text).toMatch(/cache-control: public, max-age=31536000, immutable/i);
    expect(answer.body).toBe('');
    const page = await fetch(`${gw.url}/console`, { method: 'HEAD' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-length')).toBe(
      String(readFileSync(path.join(build.directory, 'index.html')).length),
    );
    expect(await page.text()).toBe('');
    // HEAD is the console's alone: the API's routes answer it 405 as before.
    const api = await rawRequest(
      gw.port,
      'HEAD /v1/catalog HTTP/1.1\r\nHost: vca\r\nConnection: close\r\n\r\n',
      { waitMs: 500 },
    );
    expect(api.status).toBe(405);
  });

  it('never serves a file outside the build: traversal and unknown names are 404', async () => {
    const attempts = [
      '/console/assets/..%2f..%2fpackage.json',
      '/console/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      '/console/assets/..',
      '/console/assets/.%2e',
      '/console/assets/..%5cindex.html',
      '/console/assets/index.html',
      '/console/assets/nothing-here.js',
      '/console/../package.json',
      '/console/%2e%2e/package.json',
      '/console/assets/%00.js',
    ];
    for (const target of attempts) {
      const answer = await rawRequest(
        gw.port,
        `GET ${target} HTTP/1.1\r\nHost: vca\r\nConnection: close\r\n\r\n`,
      );
      expect([400, 404], target).toContain(answer.status);
      expect(answer.body, target).not.toContain('"name": "virtual-cluster-agent"');
      expect(answer.body, target).not.toContain('<!doctype html>');
    }
  });

  it('answers 503 naming the build command when the console is not built', async () => {
    const unbuilt = await startConsoleGateway(path.join(build.directory, 'no-such-folder'));
    try {
      const response = await fetch(`${unbuilt.url}/console`);
      expect(response.status).toBe(503);
      expect(await response.text()).toContain('npm run build:console');
      expect((await fetch(`${unbuilt.url}/console/assets/console-AAAAAAAA.js`)).status).toBe(503);
    } finally {
      await unbuilt.close();
    }
  });
});

/** Opens the feed, sends `first` (if any), and collects messages until the socket closes or `untilType` arrives. */
function feed(
  first: unknown,
  untilType?: string,
): Promise<{ messages: any[]; code: number | null; socket: WebSocket }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gw.port}/v1/console/feed`);
    const messages: any[] = [];
    socket.on('open', () => {
      if (first !== undefined) socket.send(JSON.stringify(first));
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      messages.push(message);
      if (untilType && message.type === untilType) resolve({ messages, code: null, socket });
    });
    socket.on('close', (code) => resolve({ messages, code, socket }));
    socket.on('error', reject);
  });
}

describe('console: the live feed', () => {
  it('refuses a wrong token with an error and close code 4401', async () => {
    const { messages, code } = await feed({ type: 'auth', token: 'not-an-operator-token' });
    expect(code).toBe(4401);
    expect(messages[0]).toMatchObject({ type: 'error', code: 'VCA_ERR_UNAUTHORIZED' });
  });

  it("refuses a gamer's token (403) and a first message that is not auth", async () => {
    const gamer = await feed({ type: 'auth', token: testCredentials.gamerToken });
    expect(gamer.code).toBe(4401);
    expect(gamer.messages[0]).toMatchObject({ type: 'error', code: 'VCA_ERR_FORBIDDEN' });
    const other = await feed({ type: 'hello' });
    expect(other.code).toBe(4401);
  });

  it('sends hello, every node and the summary after the token, then what changes', async () => {
    const tokens = await gw.registerNodes([{ id: 'feed-a', count: 2 }]);
    const { messages, socket } = await feed(
      { type: 'auth', token: testCredentials.operatorToken },
      'summary',
    );
    try {
      expect(messages[0]).toMatchObject({ type: 'hello', historySamples: 180, historySampleMs: 5000 });
      await waitFor(() =>
        messages.some((m) => m.type === 'nodes' && m.nodes.some((n: any) => n.id === 'feed-a')),
      );
      const first = messages.find((m) => m.type === 'nodes')!.nodes.find((n: any) => n.id === 'feed-a');
      expect(first.history).toHaveLength(2);
      expect(first.history[0]).toMatch(/^([0-9a-f]{2}){180}$/);
      const before = messages.length;
      const gpus = idleGpus(2).map((gpu, index) => ({ ...gpu, utilizationGpu: index === 0 ? 73 : 5 }));
      expect((await gw.telemetry('feed-a', tokens.get('feed-a')!, gpus)).status).toBe(200);
      const update = await waitFor(
        () =>
          messages
            .slice(before)
            .find(
              (m) => m.type === 'nodes' && m.nodes.some((n: any) => n.id === 'feed-a' && n.state === 'ready'),
            ),
        { timeoutMs: 2000 },
      );
      const node = update.nodes.find((n: any) => n.id === 'feed-a');
      expect(node.gpus[0].measured.gpu).toBe(730_000);
      expect(node.history).toBeUndefined();
      // The timeline: the registration webhook, the node's registration, then its move to ready.
      const timeline = await waitFor(() => {
        const events = messages.filter((m) => m.type === 'events').flatMap((m) => m.events);
        return events.some((e: any) => e.kind === 'node' && e.text === 'node feed-a is ready') && events;
      });
      expect(timeline).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            kind: 'webhook',
            text: expect.stringContaining('register 1 node (feed-a)'),
          }),
          expect.objectContaining({
            kind: 'registration',
            node: 'feed-a',
            text: expect.stringContaining('2 GPUs'),
          }),
        ]),
      );
      const seqs = timeline.map((e: any) => e.seq);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
      expect(new Set(seqs).size).toBe(seqs.length);
    } finally {
      socket.close();
    }
  });
});

describe('console: operator session routes', () => {
  it('lists live sessions with filters, ends one, and refuses bad filters', async () => {
    const tokens = await gw.registerNodes([
      { id: 'sess-a', labels: { region: 'test-west' } },
      { id: 'sess-b', labels: { region: 'test-east' } },
    ]);
    for (const [id, token] of tokens) expect((await gw.telemetry(id, token, idleGpus(1))).status).toBe(200);
    const created: string[] = [];
    for (const region of ['test-west', 'test-east']) {
      const answer = await gw.request('gamer', 'POST', '/v1/sessions', {
        game: 'stardew-valley',
        resolution: '1080p',
        fps: 60,
        region,
      });
      expect(answer.status, JSON.stringify(answer.body)).toBe(201);
      created.push(answer.body.sessionId);
    }
    const all = await gw.request('operator', 'GET', '/v1/operator/sessions');
    expect(all.status).toBe(200);
    expect(all.body.sessions.map((s: any) => s.id).sort()).toEqual([...created].sort());
    const west = await gw.request(
      'operator',
      'GET',
      '/v1/operator/sessions?region=test-west&game=stardew-valley',
    );
    expect(west.body.sessions).toHaveLength(1);
    expect(west.body.sessions[0]).toMatchObject({
      id: created[0],
      node: 'sess-a',
      region: 'test-west',
      state: 'assigned',
    });
    const onB = await gw.request('operator', 'GET', '/v1/operator/sessions?node=sess-b');
    expect(onB.body.sessions.map((s: any) => s.id)).toEqual([created[1]]);
    const otherGame = await gw.request('operator', 'GET', '/v1/operator/sessions?game=no-such-title');
    expect(otherGame.body.sessions).toEqual([]);
    const limited = await gw.request('operator', 'GET', '/v1/operator/sessions?limit=1');
    expect(limited.body).toMatchObject({ truncated: true });
    expect(limited.body.sessions).toHaveLength(1);

    for (const bad of ['?limit=0', '?limit=abc', '?state=ended', '?colour=blue', '?game=a&game=b']) {
      const answer = await gw.request('operator', 'GET', `/v1/operator/sessions${bad}`);
      expect(answer.status, bad).toBe(400);
      expect(answer.body.code).toBe('VCA_ERR_VALIDATION');
    }
    expect((await gw.request('gamer', 'GET', '/v1/operator/sessions')).status).toBe(403);
    expect((await gw.request('none', 'GET', '/v1/operator/sessions')).status).toBe(401);

    expect((await gw.request('gamer', 'DELETE', `/v1/operator/sessions/${created[0]}`)).status).toBe(403);
    const ended = await gw.request('operator', 'DELETE', `/v1/operator/sessions/${created[0]}`);
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ sessionId: created[0], state: 'ended', node: 'sess-a' });
    expect((await gw.request('gamer', 'GET', `/v1/sessions/${created[0]}`)).body.state).toBe('ended');
    expect((await gw.request('operator', 'DELETE', `/v1/operator/sessions/${created[0]}`)).status).toBe(410);
    expect((await gw.request('operator', 'DELETE', '/v1/operator/sessions/no-such-session')).status).toBe(
      404,
    );
    const after = await gw.request('operator', 'GET', '/v1/operator/sessions');
    expect(after.body.sessions.map((s: any) => s.id)).toEqual([created[1]]);
  });

  it('documents the operator session routes in the OpenAPI document', async () => {
    const document = (await gw.request('none', 'GET', '/v1/openapi.json')).body;
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining(['/v1/operator/sessions', '/v1/operator/sessions/{id}']),
    );
  });
});
