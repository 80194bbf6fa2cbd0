import { afterEach, describe, expect, it } from 'vitest';
import { type PingServer, startPingServer } from '../../gpu-probe/src/ping-server.js';

let server: PingServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('gpu-probe: the ping target', () => {
  it('answers GET /ping with 204, no body, no auth, CORS open and nothing cached', async () => {
    server = await startPingServer(0, '127.0.0.1');
    const response = await fetch(`http://127.0.0.1:${server.port}/ping`);
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('answers a browser preflight and HEAD alike, refuses other methods and paths', async () => {
    server = await startPingServer(0, '127.0.0.1');
    const base = `http://127.0.0.1:${server.port}`;
    const preflight = await fetch(`${base}/ping`, {
      method: 'OPTIONS',
      headers: { origin: 'https://play.example', 'access-control-request-method': 'GET' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('GET');
    expect((await fetch(`${base}/ping`, { method: 'HEAD' })).status).toBe(204);
    expect((await fetch(`${base}/ping`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
  });
});
