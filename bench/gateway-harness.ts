/**
 * Shared plumbing of the HTTP and WebSocket benchmarks: a real gateway (built `dist/src/main.js`) in a child
 * process with a temporary configuration, node registration through the signed contextualize webhook,
 * a telemetry loop pushing reports with each node's token, per-process CPU and RSS from /proc, and
 * cleanup of every child on exit, error or signal. All traffic goes to 127.0.0.1.
 */
import { type ChildProcess, execFileSync, execSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type autocannon from 'autocannon';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { signBody } from '../src/http/credentials.js';

export const repoRoot = path.resolve(import.meta.dirname, '..');
export const host = '127.0.0.1';

export const benchCredentials = {
  gamerToken: 'bench-gamer-token-0123456789abcdef',
  operatorToken: 'bench-operator-token-0123456789abcdef',
  orchestratorSecret: 'bench-orchestrator-secret-0123456789',
  masterSecret: 'bench-master-secret-0123456789abcdef-0123456789abcdef',
};

// ---------------------------------------------------------------------------------------------------
// Child processes: tracked and killed whatever way the benchmark ends.

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let cleanupInstalled = false;

function killAll(signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, signal);
      } catch {}
    }
  }
}

function removeTempDirs(): void {
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {}
  }
  tempDirs.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', () => {
    killAll('SIGKILL');
    removeTempDirs();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping children\n`);
      killAll('SIGKILL');
      process.exit(130);
    });
  }
  process.on('uncaughtException', (error) => {
    process.stderr.write(`bench: uncaught ${error.stack ?? error}\n`);
    killAll('SIGKILL');
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    process.stderr.write(`bench: unhandled rejection ${(error as Error)?.stack ?? error}\n`);
    killAll('SIGKILL');
    process.exit(1);
  });
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`. Resolves once it exited. */
export function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      children.delete(child);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Spawns a tracked child; `raiseFileLimit` runs it through bash with `ulimit -n` raised as far as allowed. */
export function spawnTracked(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; raiseFileLimit?: number; ipc?: boolean } = {},
): ChildProcess {
  installCleanup();
  const stdio: ('ignore' | 'inherit' | 'pipe' | 'ipc')[] = ['ignore', 'inherit', 'inherit'];
  if (options.ipc) stdio.push('ipc');
  let command = process.execPath;
  let argv = args;
  if (options.raiseFileLimit) {
    // exec keeps the pid: /proc/<pid> is the node process itself.
    const limit = options.raiseFileLimit;
    command = 'bash';
    argv = [
      '-c',
      `ulimit -n ${limit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`,
      process.execPath,
      ...args,
    ];
  }
  const child = spawn(command, argv, { cwd: repoRoot, env: options.env ?? process.env, stdio });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects after `ms` with `what` in the message. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------------
// /proc readings.

export const clockTicksPerSecond = (() => {
  try {
    const value = Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of all the process's threads, in microseconds (clock-tick resolution). */
export function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may itself hold spaces): state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / clockTicksPerSecond;
}

/** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function processRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

export function machineInfo(): { cpuModel: string; cores: number; node: string; os: string; ram: string } {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    ram: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  };
}

export function machineLine(): string {
  const m = machineInfo();
  return `${m.cpuModel}, ${m.cores} cores, ${m.ram}, Node ${m.node}, ${m.os}`;
}

/** Percentile (0..100) of an ascending-sorted array; nearest rank. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export const round = (value: number, digits = 2) => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

// ---------------------------------------------------------------------------------------------------
// The gateway child.

let built = false;
/** Compiles the gateway to dist/ once per bench run, so the measured server is the production build. */
function buildGatewayOnce(): void {
  if (built) return;
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'inherit' });
  built = true;
}

export interface GatewayChild {
  child: ChildProcess;
  pid: number;
  port: number;
  url: string;
  configFile: string;
  stop(): Promise<void>;
}

export interface GatewayChildOptions {
  /** Merged over config/default.yaml's `server` section. */
  server?: Record<string, unknown>;
  /** Extra top-level sections merged over the defaults (shallow per section). */
  sections?: Record<string, Record<string, unknown>>;
  raiseFileLimit?: number;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
  startTimeoutMs?: number;
  /**
   * Environment overrides for the gateway child, applied over the bench defaults (embedded store, no
   * autoscaler, bench credentials), e.g. `{ VCA_STORE: 'redis', VCA_REDIS_URL, VCA_REDIS_KEY_PREFIX }`.
   */
  env?: Record<string, string>;
}

/** Writes a temporary VCA_CONFIG based on config/default.yaml; removed when the benchmark exits. */
export function writeTempConfig(options: GatewayChildOptions): string {
  const base = parseYaml(readFileSync(path.join(repoRoot, 'config/default.yaml'), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;
  base.server = { ...base.server, host, ...options.server };
  base.catalog = {
    ...base.catalog,
    gamesFile: path.join(repoRoot, 'config/games.yaml'),
    gpusFile: path.join(repoRoot, 'config/gpus.yaml'),
  };
  for (const [section, values] of Object.entries(options.sections ?? {})) {
    base[section] = { ...base[section], ...values };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vca-bench-'));
  tempDirs.add(dir);
  const file = path.join(dir, 'vca.yaml');
  writeFileSync(file, stringifyYaml(base));
  return file;
}

export async function startGateway(options: GatewayChildOptions = {}): Promise<GatewayChild> {
  const port = await freePort();
  const configFile = writeTempConfig(options);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'production',
    VCA_CONFIG: configFile,
    PORT: String(port),
    HOST: host,
    VCA_LOG_LEVEL: 'warn',
    VCA_STORE: 'embedded',
    VCA_AUTOSCALER_ENABLED: 'false',
    VCA_GAMER_TOKENS: benchCredentials.gamerToken,
    VCA_OPERATOR_TOKENS: benchCredentials.operatorToken,
    VCA_ORCHESTRATOR_SECRET: benchCredentials.orchestratorSecret,
    VCA_MASTER_SECRET: benchCredentials.masterSecret,
    ...options.env,
  };
  buildGatewayOnce();
  const child = spawnTracked(
    [
      ...(options.nodeFlags ?? []),
      '--import',
      'tsx',
      '--import',
      path.join(repoRoot, 'bench/parent-watch.ts'),
      // The built gateway, as `npm start` runs it (tsx stays loaded only for the watch preload).
      path.join(repoRoot, 'dist/src/main.js'),
    ],
    { env, ...(options.raiseFileLimit ? { raiseFileLimit: options.raiseFileLimit } : {}) },
  );
  const url = `http://${host}:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `gateway exited (code ${code}, signal ${signal})`;
  });
  for (;;) {
    if (exited) throw new Error(exited);
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error('gateway did not answer /healthz in time');
    }
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) break;
    } catch {}
    await sleep(100);
  }
  if (child.pid === undefined) throw new Error('gateway has no pid');
  return { child, pid: child.pid, port, url, configFile, stop: () => stopChild(child) };
}

// ---------------------------------------------------------------------------------------------------
// Nodes: registration and telemetry.

export interface BenchNode {
  id: string;
  token: string;
  gpus: number;
}

let eventCounter = 0;

/** Registers `count` nodes of `model` (`gpusPerNode` GPUs each) in signed contextualize calls of ≤100. */
export async function registerNodes(
  url: string,
  count: number,
  model: string,
  gpusPerNode = 1,
  prefix = 'bench-node',
): Promise<BenchNode[]> {
  const nodes: BenchNode[] = [];
  for (let start = 0; start < count; start += 100) {
    const batch = Array.from({ length: Math.min(100, count - start) }, (_, i) => ({
      id: `${prefix}-${String(start + i).padStart(5, '0')}`,
      host: '10.0.0.1',
      port: 5900,
      protocol: 'webrtc',
      gpus: [{ model, count: gpusPerNode }],
      labels: {},
    }));
    const raw = JSON.stringify({
      eventId: `bench-up-${process.pid}-${Date.now()}-${++eventCounter}`,
      event: 'scale-up',
      group: 'bench-group',
      nodes: batch,
    });
    const t = Math.floor(Date.now() / 1000);
    const response = await fetch(`${url}/v1/hooks/contextualize`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-vca-signature': `t=${t},v1=${signBody(benchCredentials.orchestratorSecret, t, raw)}`,
      },
      body: raw,
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json()) as { registered?: Array<{ id: string; token: string }> };
    if (response.status !== 200 || !body.registered) {
      throw new Error(`contextualize failed (${response.status}): ${JSON.stringify(body).slice(0, 500)}`);
    }
    for (const node of body.registered) nodes.push({ id: node.id, token: node.token, gpus: gpusPerNode });
  }
  return nodes;
}

/** The telemetry the benchmarks report for a node of `gpus` nearly idle GPUs. */
export function idleReport(gpus: number) {
  return {
    gpus: Array.from({ length: gpus }, (_, index) => ({
      index,
      utilizationGpu: 3,
      utilizationEncoder: 0,
      memoryUsed: 512,
      temperatureGpu: 41,
      encoderSessions: 0,
    })),
  };
}

export interface TelemetryLoop {
  readonly sent: number;
  readonly failed: number;
  readonly lastError: string | undefined;
  /** Sends one round now (every node once) and resolves when it is done. */
  round(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * PUTs telemetry for every node every `intervalMs`, at most `concurrency` requests in flight. Rounds
 * never overlap; `stop` waits for the running one. Bounded: it ends at `maxDurationMs` at the latest.
 */
export function startTelemetryLoop(
  url: string,
  nodes: readonly BenchNode[],
  options: { intervalMs?: number; concurrency?: number; maxDurationMs?: number } = {},
): TelemetryLoop {
  const intervalMs = options.intervalMs ?? 2000;
  const concurrency = options.concurrency ?? 16;
  const endAt = Date.now() + (options.maxDurationMs ?? 10 * 60_000);
  let sent = 0;
  let failed = 0;
  let lastError: string | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const sendOne = async (node: BenchNode) => {
    try {
      const response = await fetch(`${url}/v1/nodes/${encodeURIComponent(node.id)}/telemetry`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${node.token}` },
        body: JSON.stringify(idleReport(node.gpus)),
        signal: AbortSignal.timeout(5000),
      });
      await response.arrayBuffer();
      if (response.ok) sent += 1;
      else {
        failed += 1;
        lastError = `HTTP ${response.status}`;
      }
    } catch (error) {
      failed += 1;
      lastError = (error as Error).message;
    }
  };

  const round = async () => {
    let next = 0;
    const worker = async () => {
      while (next < nodes.length && !stopped) {
        const node = nodes[next++]!;
        await sendOne(node);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, nodes.length) }, worker));
  };

  const timer = setInterval(() => {
    if (stopped || running) return;
    if (Date.now() > endAt) {
      clearInterval(timer);
      return;
    }
    running = round().finally(() => {
      running = undefined;
    });
  }, intervalMs);
  timer.unref();

  return {
    get sent() {
      return sent;
    },
    get failed() {
      return failed;
    },
    get lastError() {
      return lastError;
    },
    round: async () => {
      if (running) await running;
      await round();
    },
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      if (running) await running;
    },
  };
}

// The allocate + release workload shared by bench:http and bench:redis.

/** A light session (720p30 indie title) so capacity never runs out; `wait: false` never queues. */
export const allocationRequestBody = JSON.stringify({
  game: 'stardew-valley',
  resolution: '720p',
  fps: 30,
  wait: false,
});
export const allocationPostHeaders = {
  authorization: `Bearer ${benchCredentials.gamerToken}`,
  'content-type': 'application/json',
};
export const allocationDeleteHeaders = { authorization: `Bearer ${benchCredentials.gamerToken}` };
export const sessionIdPattern = /"sessionId":"([^"]+)"/;

export interface AllocationCounters {
  /** Completed POST + DELETE pairs. */
  allocations: number;
  postCreated: number;
  postFailed: number;
  deleteFailed: number;
  lastFailure: string;
}

export function newAllocationCounters(): AllocationCounters {
  return { allocations: 0, postCreated: 0, postFailed: 0, deleteFailed: 0, lastFailure: '' };
}

/**
 * One autocannon sequence per connection: POST /v1/sessions, then DELETE of the session it created.
 * A failed POST restarts the sequence (autocannon counts it in `resets`).
 */
export function allocateReleaseRequests(counters: AllocationCounters): autocannon.Request[] {
  return [
    {
      method: 'POST',
      path: '/v1/sessions',
      headers: allocationPostHeaders,
      body: allocationRequestBody,
      onResponse: (status, body, context) => {
        const ctx = context as { sessionId?: string };
        const match = status === 201 ? sessionIdPattern.exec(body) : null;
        ctx.sessionId = match ? match[1] : undefined;
        if (match) counters.postCreated += 1;
        else {
          counters.postFailed += 1;
          counters.lastFailure = `POST ${status}: ${body.slice(0, 200)}`;
        }
      },
    },
    {
      method: 'DELETE',
      path: '/v1/sessions/unset',
      headers: allocationDeleteHeaders,
      setupRequest: ((request: autocannon.Request, context: { sessionId?: string }) =>
        context.sessionId
          ? { ...request, path: `/v1/sessions/${context.sessionId}` }
          : undefined) as unknown as autocannon.Request['setupRequest'],
      onResponse: (status, body) => {
        if (status === 200) counters.allocations += 1;
        else {
          counters.deleteFailed += 1;
          counters.lastFailure = `DELETE ${status}: ${body.slice(0, 200)}`;
        }
      },
    },
  ];
}
