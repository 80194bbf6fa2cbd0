/**
 * The node's ping target: `GET /ping` answers 204 at once, with no auth and CORS open, so a gamer's
 * browser can time a round trip to this node's region before asking for a session (the gateway lists
 * one such URL per region at `GET /v1/regions`). Its own listener, apart from /metrics: the metrics
 * port is usually private, the ping port must be reachable by gamers, and it serves nothing else.
 */
import { createServer, type Server } from 'node:http';
import { type ListeningServer, listen } from './listening-server.js';

export type PingServer = ListeningServer;

/** Built once: every answer is the same. */
const pingHeaders = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-max-age': '86400',
  // A cached answer measures nothing.
  'cache-control': 'no-store',
  'timing-allow-origin': '*',
} as const;

export async function startPingServer(port: number, host?: string): Promise<PingServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/ping') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /ping\n');
      return;
    }
    if (request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS') {
      // A preflight and a ping are answered alike: nothing to compute, nothing to read.
      response.writeHead(204, pingHeaders).end();
      return;
    }
    response.writeHead(405, { allow: 'GET, HEAD, OPTIONS' }).end();
  });
  return listen(server, port, host);
}
