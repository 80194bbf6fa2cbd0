/**
 * `npm run demo`: the whole VCA on one machine, no GPU needed. Starts the gateway (embedded store),
 * registers simulated rendering nodes of mixed GPU models through the signed contextualization
 * webhook, runs a simulated gpu-probe for each, and drives synthetic gamers (mixed titles and formats,
 * arrivals and departures) through WebSocket /v1/play, printing a live view of nodes, GPU load per
 * dimension, sessions and queue. Ctrl-C (or --duration SECONDS) stops everything cleanly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { freePort } from '../kit/free-port.js';
import { eventually } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';
import { signBody } from '../src/http/credentials.js';
import { SimulatedHeat, type SimulatedMember } from './heat-orchestrator.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string' },
    'arrivals-per-second': { type: 'string', default: '1.5' },
    plain: { type: 'boolean', default: false },
    autoscale: { type: 'boolean', default: false },
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
  // An exited child (a probe whose VM the orchestrator deleted) is no longer waited for at shutdown.
  child.once('exit', () => {
    const at = children.indexOf(child);
    if (at >= 0) children.splice(at, 1);
  });
  return child;
}

/** Lines the simulated orchestrator wrote, newest last (the live view shows the last few). */
const orchestratorLog: string[] = [];
const probes = new Map<string, ChildProcess>();

/** Registers nodes through the signed contextualization webhook; answers each node's token. */
async function registerNodes(base: string, nodes: object[]): Promise<Array<{ id: string; token: string }>> {
  const body = JSON.stringify({
    eventId: `demo-${randomBytes(8).toString('hex')}`,
    event: 'scale-up',
    group: 'demo',
    nodes,
  });
  const t = Math.floor(Date.now() / 1000);
  const signature = signBody(credentials.orchestrator, t, body);
  const registered = await fetch(`${base}/v1/hooks/contextualize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-vca-signature': `t=${t},v1=${signature}` },
    body,
  });
  if (!registered.ok) throw new Error(`registration failed: ${registered.status} ${await registered.text()}`);
  return ((await registered.json()) as { registered: Array<{ id: string; token: string }> }).registered;
}

/** A simulated gpu-probe for a node. */
function startProbe(base: string, node: { id: string; token: string }, model: string, count: number): void {
  const probe = start(
    [
      'gpu-probe/src/cli.ts',
      '--vca',
      base,
      '--node-id',
      node.id,
      '--token',
      node.token,
      '--simulate',
      model,
      '--gpus',
      String(count),
      '--interval-ms',
      '1000',
      '--metrics-port',
      '0',
      // Several probes on one host: each takes a free port (the demo's gamers do not ping).
      '--ping-port',
      '0',
    ],
    {},
    `probe ${node.id}`,
  );
  probes.set(node.id, probe);
  let lastError = '';
  probe.stderr?.on('data', (chunk: Buffer) => {
    lastError = chunk.toString().trim().split('\n').at(-1)?.slice(0, 160) ?? '';
  });
  probe.once('exit', (code, signal) => {
    // A probe that stops while its node is still in the group (not deleted by the orchestrator) failed.
    if (!stopping && signal === null && probes.get(node.id) === probe)
      orchestratorLog.push(`probe of ${node.id} exited with code ${code}: ${lastError}`);
  });
}

/**
 * `--autoscale`: the VCA's autoscaler on, its signals answered by a simulated Heat group whose members
 * carry the pre-delete hook; the gateway runs the hook flow against it (short poll and deadline).
 */
async function startOrchestrator(
  base: () => string,
): Promise<{ heat: SimulatedHeat; env: Record<string, string> }> {
  const log = (line: string) => {
    orchestratorLog.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
    if (orchestratorLog.length > 50) orchestratorLog.shift();
  };
  const heat = new SimulatedHeat({
    log,
    onMemberCreated: async (member: SimulatedMember) => {
      const [node] = await registerNodes(base(), [
        {
          id: `gpu-${member.name}`,
          host: '127.0.0.1',
          port: 47989,
          protocol: 'moonlight',
          gpus: [{ model: 'L4', count: 1 }],
          labels: { region: 'eu-west' },
          orchestrator: {
            kind: 'heat',
            stackId: heat.stack.id,
            group: heat.group,
            member: member.name,
            serverId: member.serverId,
            createdAt: member.createdAt,
          },
        },
      ]);
      log(`heat: member ${member.name} booted; registered as node ${node!.id}`);
      startProbe(base(), node!, 'L4', 1);
    },
    onMemberDeleted: (member: SimulatedMember) => {
      const probe = probes.get(`gpu-${member.name}`);
      probes.delete(`gpu-${member.name}`);
      probe?.kill('SIGTERM');
    },
  });
  await heat.start();
  const defaults = parseYaml(readFileSync(path.join(root, 'config/default.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;
  const folder = tempDir('vca-demo-');
  const file = path.join(folder.dir, 'demo.yaml');
  writeFileSync(
    file,
    toYaml({
      ...defaults,
      // Drains end at 30 s: gamers still on a leaving node migrate where the view shows it.
      drain: { ...(defaults.drain as object), defaultDeadlineSeconds: 30 },
      autoscaler: {
        enabled: true,
        intervalSeconds: 3,
        bufferReferenceSlots: 4,
        nodeReferenceSlots: 4,
        minNodes: 2,
        maxNodes: 8,
        maxScaleUpStep: 2,
        scaleUpCooldownSeconds: 15,
        scaleDownCooldownSeconds: 25,
      },
    }),
  );
  return {
    heat,
    env: {
      VCA_CONFIG: file,
      VCA_SCALE_UP_URL: `${heat.url}/scale-up`,
      VCA_SCALE_DOWN_URL: `${heat.url}/scale-down`,
      VCA_HEAT_URL: heat.url,
      VCA_HEAT_STACK_ID: heat.stack.id,
      VCA_HEAT_STACK_NAME: heat.stack.name,
      VCA_HEAT_PROJECT_ID: heat.projectId,
      VCA_HEAT_POLL_SECONDS: '2',
      VCA_HEAT_DRAIN_DEADLINE_SECONDS: '30',
    },
  };
}

async function main(): Promise<void> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const orchestrator = args.autoscale ? await startOrchestrator(() => base) : undefined;
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
      ...(orchestrator?.env ?? {}),
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

  if (orchestrator) {
    // The group starts with three members, created a second apart (Heat removes the oldest first).
    const first = Date.now() - 3000;
    for (let index = 0; index < 3; index++) await orchestrator.heat.addMember(first + index * 1000);
  } else {
    const nodes = await registerNodes(
      base,
      fleet.map((node) => ({
        id: node.id,
        host: '127.0.0.1',
        port: 47989,
        protocol: 'moonlight',
        gpus: [{ model: node.model, count: node.count }],
        labels: { region: node.region },
      })),
    );
    for (const node of nodes) {
      const spec = fleet.find((entry) => entry.id === node.id)!;
      startProbe(base, node, spec.model, spec.count);
    }
  }

  const catalog = (await (
    await fetch(`${base}/v1/catalog`, { headers: { authorization: `Bearer ${credentials.gamer}` } })
  ).json()) as { games: Array<{ id: string; resolutions: string[]; fps: number[] }> };
  const stats = { requested: 0, assigned: 0, queued: 0, refused: 0, ended: 0, migrated: 0, lost: 0 };
  const startedAt = Date.now();

  const arrivals = setInterval(() => {
    if (stopping) return;
    // Poisson arrivals, sampled every 100 ms; with --autoscale in waves of 90 s, so the fleet grows and shrinks.
    const elapsed = (Date.now() - startedAt) / 1000;
    const rate = args.autoscale
      ? arrivalsPerSecond * (0.5 - 0.5 * Math.cos((2 * Math.PI * elapsed) / 90))
      : arrivalsPerSecond;
    if (Math.random() < rate / 10) gamer(port, catalog.games, stats);
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
    void orchestrator?.heat.stop();
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
    const message = JSON.parse(String(data)) as { type: string; code?: string; reason?: string };
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
      // A session the fleet took away: its node was removed with the gamer still on it.
      if (message.reason === 'node-removed') stats.lost!++;
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
    `gamers: ${stats.requested} requested, ${stats.assigned} assigned, ${stats.queued} queue updates, ${stats.ended} ended, ${stats.refused} refused, ${stats.migrated} migrated, ${stats.lost} lost`,
    '',
    `${'node'.padEnd(16)} ${'state'.padEnd(12)} ${'gpu'.padEnd(18)} ${'render'.padEnd(15)} ${'encoder'.padEnd(15)} ${'vram'.padEnd(15)} sess  temp`,
  ];
  for (const node of nodes.sort((a, b) => a.id.localeCompare(b.id))) {
    node.gpus.forEach((gpu, index) => {
      lines.push(
        [
          (index === 0 ? node.id : '').padEnd(16),
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
  if (args.autoscale)
    lines.push(
      '',
      'orchestrator (simulated Heat group, pre-delete hook on each member):',
      ...orchestratorLog.slice(-8),
    );
  process.stdout.write(`${args.plain ? '\n' : '\x1b[2J\x1b[H'}${lines.join('\n')}\n`);
}

main().catch((error) => {
  process.stderr.write(`demo failed: ${(error as Error).message}\n`);
  for (const child of children) child.kill('SIGTERM');
  process.exit(1);
});
