/**
 * `npm run demo`: the whole VCA on one machine, no GPU needed. Starts the gateway (embedded store),
 * registers simulated rendering nodes of mixed GPU models through the signed contextualization
 * webhook, runs a simulated gpu-probe for each, and drives synthetic gamers (mixed titles and formats,
 * arrivals and departures) through WebSocket /v1/play, printing a live view of nodes, GPU load per
 * dimension, sessions and queue. Ctrl-C (or --duration SECONDS) stops everything cleanly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { freePort } from '../kit/free-port.js';
import { eventually } from '../kit/polling.js';
import { signBody } from '../src/http/credentials.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string' },
    'arrivals-per-second': { type: 'string', default: '1.5' },
    plain: { type: 'boolean', default: false },
  },
});
const durationSeconds = args.duration ? Number(args.duration) : Number.POSITIVE_INFINITY;
const arrivalsPerSecond = Number(args['arrivals-per-second']);
const root = path.resolve(import.meta.dirname, '..');

const credentials = {
  gamer: randomBytes(18).toString('base64url'),
  operator: randomBytes(18).toString('base64url'),
  orchestrator: randomBytes(18).toString('base64url'),
  master: randomBytes(32).toString('hex'),
};

const fleet = [
  { id: 'eu-l40s-1', model: 'L40S', count: 1, region: 'eu-west' },
  { id: 'eu-l4-1', model: 'L4', count: 1, region: 'eu-west' },
  { id: 'eu-l4-2', model: 'L4', count: 1, region: 'eu-west' },
  { id: 'eu-4080s-1', model: 'RTX 4080 SUPER', count: 2, region: 'eu-west' },
  { id: 'eu-k2-1', model: 'GRID K2', count: 2, region: 'eu-west' },
];

const children: ChildProcess[] = [];
const sockets = new Set<WebSocket>();
let stopping = false;

function start(command: string[], env: Record<string, string>, name: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ...command], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    if (/error|fatal/i.test(text) && !stopping) process.stderr.write(`[${name}] ${text}`);
  });
  children.push(child);
  return child;
}

async function main(): Promise<void> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  start(
    ['src/main.ts'],
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      VCA_LOG_LEVEL: 'error',
      VCA_GAMER_TOKENS: credentials.gamer,
      VCA_OPERATOR_TOKENS: credentials.operator,
      VCA_ORCHESTRATOR_SECRET: credentials.orchestrator,
      VCA_MASTER_SECRET: credentials.master,
    },
    'gateway',
  );
  await eventually(
    async () => {
      const response = await fetch(`${base}/readyz`);
      if (!response.ok) throw new Error(`/readyz answered ${response.status}`);
    },
    { timeoutMs: 20_000, intervalMs: 200, what: 'the gateway becoming ready' },
  );

  const body = JSON.stringify({
    eventId: `demo-${Date.now()}`,
    event: 'scale-up',
    group: 'demo',
    nodes: fleet.map((node) => ({
      id: node.id,
      host: '127.0.0.1',
      port: 47989,
      protocol: 'moonlight',
      gpus: [{ model: node.model, count: node.count }],
      labels: { region: node.region },
    })),
  });
  const t = Math.floor(Date.now() / 1000);
  const signature = signBody(credentials.orchestrator, t, body);
  const registered = await fetch(`${base}/v1/hooks/contextualize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-vca-signature': `t=${t},v1=${signature}` },
    body,
  });
  if (!registered.ok) throw new Error(`registration failed: ${registered.status} ${await registered.text()}`);
  const { registered: nodes } = (await registered.json()) as {
    registered: Array<{ id: string; token: string }>;
  };
  for (const node of nodes) {
    const spec = fleet.find((entry) => entry.id === node.id)!;
    start(
      [
        'gpu-probe/src/cli.ts',
        '--vca',
        base,
        '--node-id',
        node.id,
        '--token',
        node.token,
        '--simulate',
        spec.model,
        '--gpus',
        String(spec.count),
        '--interval-ms',
        '1000',
        '--metrics-port',
        '0',
        // Five probes on one host: each takes a free port (the demo's gamers do not ping).
        '--ping-port',
        '0',
      ],
      {},
      `probe ${node.id}`,
    );
  }

  const catalog = (await (
    await fetch(`${base}/v1/catalog`, { headers: { authorization: `Bearer ${credentials.gamer}` } })
  ).json()) as { games: Array<{ id: string; resolutions: string[]; fps: number[] }> };
  const stats = { requested: 0, assigned: 0, queued: 0, refused: 0, ended: 0, migrated: 0 };
  const startedAt = Date.now();

  const arrivals = setInterval(() => {
    if (stopping) return;
    // Poisson arrivals, sampled every 100 ms.
    if (Math.random() < arrivalsPerSecond / 10) gamer(port, catalog.games, stats);
  }, 100);
  const view = setInterval(() => {
    render(base, stats, startedAt).catch(() => undefined);
    if ((Date.now() - startedAt) / 1000 >= durationSeconds) shutdown(0);
  }, 1000);
  const shutdown = (code: number) => {
    if (stopping) return;
    stopping = true;
    clearInterval(arrivals);
    clearInterval(view);
    for (const socket of sockets) socket.close();
    for (const child of children) child.kill('SIGTERM');
    const exitTimer = setTimeout(() => process.exit(code), 3000);
    exitTimer.unref();
    Promise.all(children.map((child) => new Promise((resolve) => child.once('exit', resolve)))).then(() => {
      process.stdout.write(`\ndemo stopped: ${JSON.stringify(stats)}\n`);
      process.exit(code);
    });
  };
  process.on('SIGINT', () => shutdown(0));
  process.on('SIGTERM', () => shutdown(0));
}

function gamer(
  port: number,
  games: Array<{ id: string; resolutions: string[]; fps: number[] }>,
  stats: Record<string, number>,
): void {
  const game = games[Math.floor(Math.random() * games.length)]!;
  // Most gamers play at 1080p or below, at 60 fps when allowed.
  const resolutions = game.resolutions.filter((r) => !/3840|2560/.test(r));
  const resolution = (resolutions.length > 0 ? resolutions : game.resolutions)[
    Math.floor(Math.random() * 2) % game.resolutions.length
  ]!;
  const fps = game.fps.includes(60) ? 60 : game.fps[0]!;
  const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/play?token=${credentials.gamer}`);
  sockets.add(socket);
  const playSeconds = 10 + Math.random() * 40;
  socket.on('open', () => {
    stats.requested!++;
    socket.send(JSON.stringify({ type: 'request', game: game.id, resolution, fps }));
  });
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as { type: string; code?: string };
    if (message.type === 'assigned') {
      stats.assigned!++;
      setTimeout(
        () => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ type: 'end' })),
        playSeconds * 1000,
      ).unref();
    } else if (message.type === 'queued') stats.queued!++;
    else if (message.type === 'migrate') stats.migrated!++;
    else if (message.type === 'ended') {
      stats.ended!++;
      socket.close();
    } else if (message.type === 'error') {
      stats.refused!++;
      socket.close();
    }
  });
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => sockets.delete(socket));
}

interface NodeView {
  id: string;
  state: string;
  gpus: Array<{
    model: string;
    eligible: boolean;
    temperatureCelsius: number | null;
    memoryTotalMiB: number;
    effective: { gpu: number; encoder: number; vramMiB: number };
    sessions: number;
  }>;
}

const bar = (ratio: number) => {
  const filled = Math.round(Math.min(1, Math.max(0, ratio)) * 10);
  return `${'#'.repeat(filled)}${'.'.repeat(10 - filled)} ${String(Math.round(ratio * 100)).padStart(3)}%`;
};

async function render(base: string, stats: Record<string, number>, startedAt: number): Promise<void> {
  const headers = { authorization: `Bearer ${credentials.operator}` };
  const { nodes } = (await (await fetch(`${base}/v1/nodes`, { headers })).json()) as { nodes: NodeView[] };
  const cluster = (await (await fetch(`${base}/v1/cluster`, { headers })).json()) as {
    sessions: { assigned: number; queued: number };
    capacity: { freeReferenceSlots: number };
  };
  const lines = [
    `VCA demo — ${Math.round((Date.now() - startedAt) / 1000)} s   sessions ${cluster.sessions.assigned}   queued ${cluster.sessions.queued}   free reference slots ${cluster.capacity.freeReferenceSlots}   (Ctrl-C to stop)`,
    `gamers: ${stats.requested} requested, ${stats.assigned} assigned, ${stats.queued} queue updates, ${stats.ended} ended, ${stats.refused} refused`,
    '',
    `${'node'.padEnd(12)} ${'state'.padEnd(12)} ${'gpu'.padEnd(18)} ${'render'.padEnd(15)} ${'encoder'.padEnd(15)} ${'vram'.padEnd(15)} sess  temp`,
  ];
  for (const node of nodes.sort((a, b) => a.id.localeCompare(b.id))) {
    node.gpus.forEach((gpu, index) => {
      lines.push(
        [
          (index === 0 ? node.id : '').padEnd(12),
          (index === 0 ? node.state : '').padEnd(12),
          `${index}:${gpu.model}`.slice(0, 18).padEnd(18),
          bar(gpu.effective.gpu / 1e6),
          bar(gpu.effective.encoder / 1e6),
          bar(gpu.effective.vramMiB / gpu.memoryTotalMiB),
          String(gpu.sessions).padStart(4),
          gpu.temperatureCelsius === null
            ? '   -'
            : `${String(Math.round(gpu.temperatureCelsius)).padStart(3)}C`,
        ].join(' '),
      );
    });
  }
  process.stdout.write(`${args.plain ? '\n' : '\x1b[2J\x1b[H'}${lines.join('\n')}\n`);
}

main().catch((error) => {
  process.stderr.write(`demo failed: ${(error as Error).message}\n`);
  for (const child of children) child.kill('SIGTERM');
  process.exit(1);
});
