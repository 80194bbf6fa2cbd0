/**
 * WebSocket capacity benchmark (docs/architecture.md "Performance budgets": 50,000 concurrent gamer
 * WebSockets held by one process, at most 3 KiB of gateway memory per socket with its session). One gateway child (src/main.ts, embedded store) with enough L40S
 * capacity for every session (computed from the catalog's cost model), registered through the signed
 * contextualize webhook and kept fresh by telemetry every 2 s. The benchmark process opens
 * BENCH_WS_CONNECTIONS sockets on /v1/play (bounded concurrency), then each asks for a session (light
 * title at 720p30, wait:false) with a bounded number of requests in flight, holds it, and finally
 * everything closes.
 *
 * Records: connect time (total, per-connection p50/p99), assignment latency (request sent -> "assigned"
 * received, p50/p99), sessions assigned (client side and the gateway's /v1/cluster), errors, gateway
 * RSS (VmRSS) idle, after connecting, while holding, and RSS per connection.
 *
 * The file limits are raised by the benchmark itself (prlimit on this process, ulimit in the gateway's
 * shell). Environment: BENCH_WS_CONNECTIONS (50000), BENCH_WS_CONNECT_CONCURRENCY (64),
 * BENCH_WS_REQUEST_WINDOW (32 requests in flight, like the HTTP benchmark's connections), BENCH_WS_HOLD_SECONDS (5), BENCH_WS_SOURCES
 * (client source addresses 127.0.0.1..127.0.0.N, default one per 20,000 connections). Writes bench/results/ws.{json,md}.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { host } from '../kit/free-port.js';
import { type GatewayProcess, gatewayCredentials, registerNodes, repoRoot } from '../kit/gateway-process.js';
import { sleep, withTimeout } from '../kit/polling.js';
import { loadCatalog } from '../src/config/load-catalog.js';
import { loadConfig } from '../src/config/load-config.js';
import { CatalogIndex } from '../src/cost/catalog.js';
import { parseResolution } from '../src/cost/resolution.js';
import { fullShare, sessionCost } from '../src/cost/session-cost.js';
import {
  benchNodes,
  machineInfo,
  machineLine,
  percentile,
  processRssBytes,
  round,
  startGateway,
  startTelemetryLoop,
  type TelemetryLoop,
} from './gateway-harness.js';

const connectionCount = Number(process.env.BENCH_WS_CONNECTIONS ?? 50_000);
const connectConcurrency = Number(process.env.BENCH_WS_CONNECT_CONCURRENCY ?? 64);
const requestWindow = Number(process.env.BENCH_WS_REQUEST_WINDOW ?? 32);
const holdSeconds = Number(process.env.BENCH_WS_HOLD_SECONDS ?? 5);
// One source address has ~28,000 ephemeral ports towards the gateway's one port: a source per 20,000.
const sourceCount = Math.max(
  1,
  Math.min(9, Number(process.env.BENCH_WS_SOURCES ?? Math.ceil(connectionCount / 20_000))),
);
/** Memory per socket holding its session (gateway RSS growth / sockets), at most (docs: budgets). */
const maxBytesPerSocket = 3 * 1024;
const overallTimeoutMs = 170_000 + connectionCount * 6;
const connectPhaseTimeoutMs = 60_000 + connectionCount * 2;
const requestPhaseTimeoutMs = 60_000 + connectionCount * 2;
const perRequestTimeoutMs = 15_000;

const game = 'stardew-valley';
const resolution = '720p';
const fps = 30;
const model = 'L40S';
const requestMessage = JSON.stringify({ type: 'request', game, resolution, fps, wait: false });

interface Client {
  socket: WebSocket | undefined;
  connectMs: number;
  open: boolean;
  closedCode: number | undefined;
  requestedAt: number;
  onAssigned: ((message: { type: string; code?: string }) => void) | undefined;
  assigned: boolean;
}

/** Sessions one GPU of `model` holds under the configured headroom (the cost model's binding limit). */
function sessionsPerGpu(): { perGpu: number; limits: Record<string, number> } {
  const config = loadConfig({ env: {} });
  const catalog = new CatalogIndex(loadCatalog(config));
  const gpu = catalog.findModel(model);
  const entry = catalog.catalog.games.get(game);
  if (!gpu || !entry) throw new Error(`catalog has no ${model} or ${game}`);
  const cost = sessionCost({ game: entry, size: parseResolution(resolution), fps }, gpu);
  if (!cost) throw new Error(`${model} cannot stream`);
  const headroom = config.placement.headroom;
  const limits: Record<string, number> = {
    gpu: Math.floor((headroom.gpu * fullShare) / cost.gpu),
    encoder: Math.floor((headroom.encoder * fullShare) / cost.encoder),
    vram: Math.floor((headroom.vram * gpu.vramMiB) / cost.vramMiB),
  };
  if (gpu.encoderSessionLimit !== null) limits.encoderSessions = gpu.encoderSessionLimit;
  return { perGpu: Math.min(...Object.values(limits)), limits };
}

/**
 * Raises this process's open-file limit to `wanted` when it is lower (prlimit on itself: the client
 * side holds one socket per connection too); as root the hard limit may grow as well.
 */
function raiseOwnFileLimit(wanted: number): void {
  if (openFileLimit() >= wanted) return;
  try {
    execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${wanted}:${wanted}`]);
  } catch {
    // Left as it is: the check below says what to do.
  }
}

function openFileLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  return !match || match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
}

function stats(values: number[]) {
  const sorted = Float64Array.from(values).sort();
  return {
    p50: round(percentile(sorted, 50), 2),
    p90: round(percentile(sorted, 90), 2),
    p99: round(percentile(sorted, 99), 2),
    max: round(sorted.length ? sorted[sorted.length - 1]! : Number.NaN, 2),
  };
}

/** Runs `task(i)` for i in [0, count) with at most `limit` in flight; stops starting new ones at `deadline`. */
async function pool(count: number, limit: number, deadline: number, task: (i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < count && Date.now() < deadline) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

const mib = (bytes: number) => round(bytes / 2 ** 20, 1);

async function clusterSessions(url: string): Promise<{ assigned: number; queued: number } | undefined> {
  try {
    const response = await fetch(`${url}/v1/cluster`, {
      headers: { authorization: `Bearer ${gatewayCredentials.operatorToken}` },
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json()) as { sessions?: { assigned: number; queued: number } };
    return body.sessions;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const machine = machineInfo();
  console.log(`bench:ws on ${machineLine()}`);
  raiseOwnFileLimit(connectionCount + 4096);
  const fdLimit = openFileLimit();
  if (fdLimit < connectionCount + 512) {
    throw new Error(
      `this process may open ${fdLimit} files, too few for ${connectionCount} sockets, and the hard ` +
        'limit could not be raised (root without CAP_SYS_RESOURCE in a container?): raise it where the ' +
        'process starts (ulimit -Hn, LimitNOFILE=) or lower BENCH_WS_CONNECTIONS',
    );
  }
  const capacity = sessionsPerGpu();
  const nodeCount = Math.ceil((connectionCount * 1.15) / capacity.perGpu);
  console.log(
    `${connectionCount} sockets; ${game} ${resolution}${fps} fits ${capacity.perGpu} per ${model} GPU ` +
      `(${Object.entries(capacity.limits)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}): registering ${nodeCount} ${model} nodes`,
  );

  let gateway: GatewayProcess | undefined;
  let telemetry: TelemetryLoop | undefined;
  const clients: Client[] = [];
  const errors: Record<string, number> = {};
  const countError = (key: string) => {
    errors[key] = (errors[key] ?? 0) + 1;
  };
  try {
    gateway = await startGateway({
      server: {
        maxConnectionsPerAddress: connectionCount + 1000,
        requestsPerSecondPerAddress: 1_000_000,
        requestBurst: 1_000_000,
        wsIdleTimeoutSeconds: 240,
      },
      raiseFileLimit: Math.max(65_536, connectionCount + 4096),
    });
    const gatewayFdLimit = /^Max open files\s+(\S+)/m.exec(
      readFileSync(`/proc/${gateway.pid}/limits`, 'utf8'),
    )?.[1];
    console.log(`gateway pid ${gateway.pid} on ${gateway.url} (open files limit ${gatewayFdLimit})`);
    const setupStarted = performance.now();
    const nodes = await registerNodes(gateway.url, benchNodes(nodeCount, model, 'ws-bench'));
    telemetry = startTelemetryLoop(gateway.url, nodes, { intervalMs: 2000, concurrency: 16 });
    await telemetry.round();
    console.log(
      `registered ${nodes.length} nodes in ${round((performance.now() - setupStarted) / 1000, 1)} s`,
    );
    await sleep(1000);
    const rssIdle = processRssBytes(gateway.pid);
    console.log(`gateway RSS idle: ${mib(rssIdle)} MiB`);

    // Phase 1: connect.
    const wsUrl = `ws://${host}:${gateway.port}/v1/play?token=${encodeURIComponent(gatewayCredentials.gamerToken)}`;
    const connectStarted = performance.now();
    const connectDeadline = Date.now() + connectPhaseTimeoutMs;
    await withTimeout(
      pool(connectionCount, connectConcurrency, connectDeadline, async (i) => {
        const client: Client = {
          socket: undefined,
          connectMs: Number.NaN,
          open: false,
          closedCode: undefined,
          requestedAt: 0,
          onAssigned: undefined,
          assigned: false,
        };
        clients[i] = client;
        const started = performance.now();
        await new Promise<void>((resolve) => {
          const socket = new WebSocket(wsUrl, {
            perMessageDeflate: false,
            handshakeTimeout: 20_000,
            ...(sourceCount > 1 ? { localAddress: `127.0.0.${1 + (i % sourceCount)}` } : {}),
          });
          client.socket = socket;
          let settled = false;
          const settle = () => {
            if (!settled) {
              settled = true;
              resolve();
            }
          };
          socket.on('open', () => {
            client.open = true;
            client.connectMs = performance.now() - started;
            settle();
          });
          socket.on('unexpected-response', (_request, response) => {
            countError(`upgrade refused ${response.statusCode}`);
            response.resume();
            socket.terminate();
            settle();
          });
          socket.on('error', (error) => {
            countError(`socket error: ${(error as NodeJS.ErrnoException).code ?? error.message}`);
            settle();
          });
          socket.on('close', (code) => {
            client.open = false;
            client.closedCode = code;
            client.onAssigned?.({ type: 'closed', code: String(code) });
            settle();
          });
          socket.on('message', (data) => {
            let message: { type: string; code?: string };
            try {
              message = JSON.parse(String(data));
            } catch {
              countError('malformed message');
              return;
            }
            if (client.onAssigned) client.onAssigned(message);
            else if (message.type !== 'assigned') countError(`unsolicited ${message.type}`);
          });
        });
      }),
      connectPhaseTimeoutMs + 25_000,
      'connect phase',
    );
    const connectSeconds = (performance.now() - connectStarted) / 1000;
    const connected = clients.filter((c) => c?.open).length;
    console.log(
      `connected ${connected}/${connectionCount} in ${round(connectSeconds, 2)} s (${round(connected / connectSeconds, 0)}/s)`,
    );
    await sleep(1000);
    const rssConnected = processRssBytes(gateway.pid);
    console.log(`gateway RSS with ${connected} idle sockets: ${mib(rssConnected)} MiB`);

    // Phase 2: every socket asks for a session.
    const assignLatencies: number[] = [];
    const outcomes: Record<string, number> = {};
    const requestStarted = performance.now();
    const requestDeadline = Date.now() + requestPhaseTimeoutMs;
    await withTimeout(
      pool(clients.length, requestWindow, requestDeadline, async (i) => {
        const client = clients[i]!;
        if (!client.open || !client.socket) return;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            client.onAssigned = undefined;
            outcomes.timeout = (outcomes.timeout ?? 0) + 1;
            resolve();
          }, perRequestTimeoutMs);
          client.onAssigned = (message) => {
            clearTimeout(timer);
            client.onAssigned = undefined;
            const key = message.type === 'error' ? `error ${message.code}` : message.type;
            outcomes[key] = (outcomes[key] ?? 0) + 1;
            if (message.type === 'assigned') {
              client.assigned = true;
              assignLatencies.push(performance.now() - client.requestedAt);
            }
            resolve();
          };
          client.requestedAt = performance.now();
          client.socket!.send(requestMessage);
        });
      }),
      requestPhaseTimeoutMs + perRequestTimeoutMs + 5_000,
      'request phase',
    );
    const requestSeconds = (performance.now() - requestStarted) / 1000;
    const assigned = clients.filter((c) => c?.assigned).length;
    console.log(
      `assigned ${assigned} sessions in ${round(requestSeconds, 2)} s (${round(assigned / requestSeconds, 0)}/s); outcomes ${JSON.stringify(outcomes)}`,
    );

    // Phase 3: hold.
    await sleep(holdSeconds * 1000);
    const rssHolding = processRssBytes(gateway.pid);
    const stillOpen = clients.filter((c) => c?.open).length;
    const server = await clusterSessions(gateway.url);
    console.log(
      `after ${holdSeconds} s holding: ${stillOpen} sockets open, gateway reports ${JSON.stringify(server)}, RSS ${mib(rssHolding)} MiB`,
    );
    const telemetrySent = telemetry.sent;
    const telemetryFailed = telemetry.failed;

    // Phase 4: close everything.
    const closeStarted = performance.now();
    await withTimeout(
      Promise.all(
        clients.map(
          (client) =>
            new Promise<void>((resolve) => {
              const socket = client?.socket;
              if (!socket || socket.readyState === WebSocket.CLOSED) return resolve();
              socket.once('close', () => resolve());
              socket.close(1000, 'bench done');
            }),
        ),
      ),
      20_000,
      'closing sockets',
    ).catch((error) => {
      countError('close timeout');
      console.warn((error as Error).message);
      for (const client of clients) client?.socket?.terminate();
    });
    const closeSeconds = (performance.now() - closeStarted) / 1000;
    const serverAfterClose = await clusterSessions(gateway.url);

    const connectTimes = clients.filter((c) => c?.open || c?.assigned || c?.closedCode !== undefined);
    const connectMs = connectTimes.map((c) => c.connectMs).filter((v) => Number.isFinite(v));
    const connectStats = stats(connectMs);
    const assignStats = stats(assignLatencies);
    const errorCount =
      Object.values(errors).reduce((a, b) => a + b, 0) +
      Object.entries(outcomes)
        .filter(([key]) => key !== 'assigned')
        .reduce((a, [, v]) => a + v, 0);
    const rssPerConnectionKiB = (rssConnected - rssIdle) / 1024 / Math.max(1, connected);
    const rssPerSessionKiB = (rssHolding - rssIdle) / 1024 / Math.max(1, assigned);
    // Gateway memory per socket holding its session: RSS growth from idle to holding them all.
    const bytesPerSocket = round((rssHolding - rssIdle) / Math.max(1, assigned), 0);
    const pass =
      connected === connectionCount &&
      assigned === connectionCount &&
      errorCount === 0 &&
      bytesPerSocket <= maxBytesPerSocket;

    const result = {
      connections: connectionCount,
      connected,
      assigned,
      errors: errorCount,
      bytesPerSocket,
      maxBytesPerSocket,
      errorDetails: {
        ...errors,
        ...Object.fromEntries(Object.entries(outcomes).filter(([k]) => k !== 'assigned')),
      },
      connect: {
        totalSeconds: round(connectSeconds, 3),
        perSecond: round(connected / connectSeconds, 0),
        perConnectionP50Ms: connectStats.p50,
        perConnectionP99Ms: connectStats.p99,
        perConnectionMaxMs: connectStats.max,
        concurrency: connectConcurrency,
      },
      assignment: {
        totalSeconds: round(requestSeconds, 3),
        perSecond: round(assigned / requestSeconds, 0),
        latencyP50Ms: assignStats.p50,
        latencyP90Ms: assignStats.p90,
        latencyP99Ms: assignStats.p99,
        latencyMaxMs: assignStats.max,
        requestsInFlight: requestWindow,
      },
      hold: { seconds: holdSeconds, stillOpen, gatewaySessions: server ?? null },
      close: { seconds: round(closeSeconds, 3), gatewaySessionsAfter: serverAfterClose ?? null },
      rss: {
        idleMiB: mib(rssIdle),
        connectedMiB: mib(rssConnected),
        holdingMiB: mib(rssHolding),
        perConnectionKiB: round(rssPerConnectionKiB, 1),
        perConnectionWithSessionKiB: round(rssPerSessionKiB, 1),
      },
      pass,
      date: new Date().toISOString(),
      machine,
      settings: {
        request: JSON.parse(requestMessage),
        model,
        nodes: nodes.length,
        sessionsPerGpu: capacity.perGpu,
        sessionsPerGpuLimits: capacity.limits,
        capacity: nodes.length * capacity.perGpu,
        sourceAddresses: sourceCount,
        gatewayOpenFilesLimit: gatewayFdLimit,
        telemetryReportsSent: telemetrySent,
        telemetryReportsFailed: telemetryFailed,
      },
    };
    const resultsDir = path.join(repoRoot, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, 'ws.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(path.join(resultsDir, 'ws.md'), markdown(result));

    console.log('');
    console.log(
      `connect: ${connected}/${connectionCount} in ${result.connect.totalSeconds} s, per connection p50 ${connectStats.p50} ms, p99 ${connectStats.p99} ms`,
    );
    console.log(
      `assignment: ${assigned} assigned, p50 ${assignStats.p50} ms, p99 ${assignStats.p99} ms (${requestWindow} in flight), ${result.assignment.perSecond}/s`,
    );
    console.log(
      `RSS: idle ${result.rss.idleMiB} MiB, ${connected} sockets ${result.rss.connectedMiB} MiB, holding sessions ${result.rss.holdingMiB} MiB; ` +
        `${result.rss.perConnectionKiB} KiB per socket, ${result.rss.perConnectionWithSessionKiB} KiB per socket with its session`,
    );
    console.log(`errors ${errorCount} ${JSON.stringify(result.errorDetails)}`);
    console.log(
      `verdict (${connectionCount} concurrent sockets each holding a session, 0 errors): ${pass ? 'PASS' : 'FAIL'}`,
    );
  } finally {
    for (const client of clients) client?.socket?.terminate();
    await telemetry?.stop();
    await gateway?.stop();
  }
}

function markdown(r: {
  connections: number;
  connected: number;
  assigned: number;
  errors: number;
  errorDetails: Record<string, number>;
  connect: Record<string, number>;
  assignment: Record<string, number>;
  hold: { seconds: number; stillOpen: number; gatewaySessions: unknown };
  close: { seconds: number; gatewaySessionsAfter: unknown };
  rss: Record<string, number>;
  pass: boolean;
  date: string;
  machine: ReturnType<typeof machineInfo>;
  settings: Record<string, unknown>;
}): string {
  const s = r.settings;
  return `# WebSocket capacity benchmark

- Date: ${r.date}
- Machine: ${r.machine.cpuModel}, ${r.machine.cores} cores, ${r.machine.ram}, Node ${r.machine.node}, ${r.machine.os} (shared machine)
- Gateway: one \`src/main.ts\` child, embedded store, ${s.nodes} ${s.model} nodes (${s.sessionsPerGpu} sessions of the request below per GPU, capacity ${s.capacity}) registered through the signed contextualize webhook, telemetry every 2 s for every node (${s.telemetryReportsSent} reports, ${s.telemetryReportsFailed} failed)
- Clients: the \`ws\` package in the benchmark process, ${r.connections} sockets on \`/v1/play\` from ${s.sourceAddresses} source address(es), ${r.connect.concurrency} handshakes in flight; each sends \`${JSON.stringify(s.request)}\` with ${r.assignment.requestsInFlight} requests in flight and holds its session ${r.hold.seconds} s

| measure | value |
|---|---:|
| sockets connected | ${r.connected} / ${r.connections} |
| connect, total | ${r.connect.totalSeconds} s (${r.connect.perSecond}/s) |
| connect per socket p50 / p99 | ${r.connect.perConnectionP50Ms} / ${r.connect.perConnectionP99Ms} ms |
| sessions assigned | ${r.assigned} |
| assignment total | ${r.assignment.totalSeconds} s (${r.assignment.perSecond}/s) |
| assignment latency p50 / p99 | ${r.assignment.latencyP50Ms} / ${r.assignment.latencyP99Ms} ms |
| sockets open after holding | ${r.hold.stillOpen} |
| gateway's own count while holding | ${JSON.stringify(r.hold.gatewaySessions)} |
| errors | ${r.errors} ${r.errors ? JSON.stringify(r.errorDetails) : ''} |
| gateway RSS idle (nodes registered, no sockets) | ${r.rss.idleMiB} MiB |
| gateway RSS with the sockets open | ${r.rss.connectedMiB} MiB |
| gateway RSS holding the sessions | ${r.rss.holdingMiB} MiB |
| RSS per socket | ${r.rss.perConnectionKiB} KiB |
| RSS per socket with its session | ${r.rss.perConnectionWithSessionKiB} KiB |
| closing all sockets | ${r.close.seconds} s; gateway after: ${JSON.stringify(r.close.gatewaySessionsAfter)} |

**Verdict: ${r.pass ? 'PASS' : 'FAIL'}** (${r.connections.toLocaleString('en')} concurrent gamer WebSockets, each holding a session, in one process, 0 errors).
`;
}

withTimeout(main(), overallTimeoutMs, 'bench:ws')
  .then(() => process.exit(0))
  .catch((error) => {
    process.stderr.write(`bench:ws failed: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  });
