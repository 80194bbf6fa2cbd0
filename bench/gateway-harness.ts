/**
 * Plumbing of the HTTP, WebSocket and Redis benchmarks on top of the kit: a production-build gateway
 * (kit/gateway-process.ts) with the benchmarks' settings, clean-up of every child on Ctrl-C or a crash,
 * a telemetry loop reporting every node idle, per-process CPU and RSS from /proc, and the allocate +
 * release workload. All traffic goes to 127.0.0.1.
 */
import { type ChildProcess, execSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type autocannon from 'autocannon';
import { parse as parseYaml } from 'yaml';
import { killOnExit, killTrackedChildren } from '../kit/child-processes.js';
import { freePort, host } from '../kit/free-port.js';
import {
  type GatewayProcess,
  gatewayCredentials,
  gatewayCredentialsEnv,
  mergeSettings,
  type NodeToRegister,
  type RegisteredNode,
  repoRoot,
  reportIdle,
  startGatewayProcess,
  writeGatewayConfig,
} from '../kit/gateway-process.js';

// ---------------------------------------------------------------------------------------------------
// Child processes: killed whatever way the benchmark ends.

let cleanupInstalled = false;

/** A standalone script ends on a signal or a crash without 'exit' hooks: kill the children first. */
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping children\n`);
      killTrackedChildren('SIGKILL');
      process.exit(130);
    });
  }
  process.on('uncaughtException', (error) => {
    process.stderr.write(`bench: uncaught ${error.stack ?? error}\n`);
    killTrackedChildren('SIGKILL');
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    process.stderr.write(`bench: unhandled rejection ${(error as Error)?.stack ?? error}\n`);
    killTrackedChildren('SIGKILL');
    process.exit(1);
  });
}

/** Spawns a node child (in the repository root) that is killed with the benchmark. */
export function spawnTracked(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; ipc?: boolean } = {},
): ChildProcess {
  installCleanup();
  const stdio: ('ignore' | 'inherit' | 'ipc')[] = ['ignore', 'inherit', 'inherit'];
  if (options.ipc) stdio.push('ipc');
  return killOnExit(spawn(process.execPath, args, { cwd: repoRoot, env: options.env ?? process.env, stdio }));
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
// The gateway child and its nodes.

export interface BenchGatewayOptions {
  /** Merged over config/default.yaml's `server` section. */
  server?: Record<string, unknown>;
  /** Other sections merged over config/default.yaml (e.g. `{ telemetry: { staleAfterIntervals: 1000 } }`). */
  settings?: Record<string, unknown>;
  raiseFileLimit?: number;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /**
   * Environment over the bench defaults (embedded store, no autoscaler, the kit's credentials), e.g.
   * `{ VCA_STORE: 'redis', VCA_REDIS_URL, VCA_REDIS_KEY_PREFIX }`.
   */
  env?: Record<string, string>;
}

/** The production build (`npm start`'s dist/src/main.js) with config/default.yaml, on a free port. */
export async function startGateway(options: BenchGatewayOptions = {}): Promise<GatewayProcess> {
  installCleanup();
  const defaults = parseYaml(readFileSync(path.join(repoRoot, 'config/default.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;
  const config = writeGatewayConfig(
    mergeSettings(defaults, { ...options.settings, server: { host, ...options.server } }),
  );
  return startGatewayProcess({
    name: 'gateway',
    build: true,
    echo: true,
    env: {
      NODE_ENV: 'production',
      VCA_CONFIG: config.file,
      PORT: String(await freePort()),
      VCA_LOG_LEVEL: 'warn',
      VCA_STORE: 'embedded',
      VCA_AUTOSCALER_ENABLED: 'false',
      ...gatewayCredentialsEnv,
      ...options.env,
    },
    ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}),
    ...(options.raiseFileLimit ? { raiseFileLimit: options.raiseFileLimit } : {}),
  });
}

/** `count` nodes of one GPU of `model`, named `<prefix>-00000` on. */
export function benchNodes(count: number, model: string, prefix: string): NodeToRegister[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${String(i).padStart(5, '0')}`, model }));
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
  nodes: readonly RegisteredNode[],
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

  const sendOne = async (node: RegisteredNode) => {
    try {
      await reportIdle(url, node, 5000);
      sent += 1;
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
  authorization: `Bearer ${gatewayCredentials.gamerToken}`,
  'content-type': 'application/json',
};
export const allocationDeleteHeaders = { authorization: `Bearer ${gatewayCredentials.gamerToken}` };
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
