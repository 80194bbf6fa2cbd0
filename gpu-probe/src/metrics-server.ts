/** A node:http server for the probe's `/metrics` (Prometheus text) and `/healthz`; nothing else. */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { type ListeningServer, listen } from './listening-server.js';

export type MetricsServer = ListeningServer;

export async function startMetricsServer(
  registry: Registry,
  port: number,
  host?: string,
): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(error.message),
      );
      return;
    }
    if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
  });
  return listen(server, port, host);
}
