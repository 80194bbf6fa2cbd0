/**
 * The HTTP benchmark's baseline: a bare uWebSockets.js JSON endpoint. `POST /v1/sessions` buffers the
 * body, parses it as JSON and answers `201` with a JSON body of the same size as the gateway's
 * allocation response (`BARE_BODY_FILE`, serialized per request), corked: status, content-type, end.
 * `DELETE /v1/sessions/:id` answers `200` with the gateway's release response (`BARE_RELEASE_BODY_FILE`)
 * the same way: with both, the allocate+release loop runs against a server that does no work of its
 * own (the benchmark's floor).
 * Run as a child of bench/http.bench.ts: `BARE_PORT`, `BARE_BODY_FILE`, `BARE_RELEASE_BODY_FILE`;
 * tells the parent over IPC when it listens.
 */

import uws from 'uWebSockets.js';
import { readFileSync } from 'node:fs';

const port = Number(process.env.BARE_PORT ?? 0);
const template: unknown = process.env.BARE_BODY_FILE
  ? JSON.parse(readFileSync(process.env.BARE_BODY_FILE, 'utf8'))
  : { sessionId: 'baseline', state: 'assigned' };
const releaseTemplate: unknown = process.env.BARE_RELEASE_BODY_FILE
  ? JSON.parse(readFileSync(process.env.BARE_RELEASE_BODY_FILE, 'utf8'))
  : { sessionId: 'baseline', state: 'ended' };

const app = uws.App();

app.post('/v1/sessions', (res, req) => {
  // Copied now: req is invalid once this handler returns.
  const contentType = req.getHeader('content-type');
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  let chunks: Buffer[] = [];
  res.onData((chunk, isLast) => {
    // uWS reuses the chunk's memory after this callback: copy it.
    chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (!isLast) return;
    const body = Buffer.concat(chunks);
    chunks = [];
    let status = '201 Created';
    let payload: string;
    try {
      if (!contentType.startsWith('application/json')) throw new Error('not JSON');
      JSON.parse(body.toString('utf8'));
      payload = JSON.stringify(template);
    } catch {
      status = '400 Bad Request';
      payload = '{"error":"bad request"}';
    }
    if (aborted) return;
    res.cork(() => {
      res.writeStatus(status).writeHeader('content-type', 'application/json').end(payload);
    });
  });
});

app.del('/v1/sessions/:id', (res) => {
  const payload = JSON.stringify(releaseTemplate);
  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end(payload);
  });
});

app.any('/*', (res) => {
  res.cork(() => {
    res.writeStatus('404 Not Found').end();
  });
});

app.listen('127.0.0.1', port, (listenSocket) => {
  if (!listenSocket) {
    process.stderr.write(`bare-server: cannot listen on ${port}\n`);
    process.exit(1);
  }
  process.send?.({ ready: true, port: uws.us_socket_local_port(listenSocket) });
});

// The parent going away (even by SIGKILL) closes the IPC channel: do not outlive it.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
