/**
 * Real gateways in child processes, for tests and benchmarks: `src/main.ts` through tsx, or the
 * production build `dist/src/main.js`, in a clean environment on 127.0.0.1, with their log lines kept;
 * plus what a node does to join one (signed registration, idle telemetry). Every gateway started here
 * is SIGKILLed when this process exits, and exits by itself when this process is killed outright
 * (kit/parent-watch.ts).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { signBody } from '../src/http/credentials.js';
import { killOnExit } from './child-processes.js';
import { host } from './free-port.js';
import { idleGpus } from './idle-telemetry.js';
import { eventually } from './polling.js';
import { tempDir } from './temp-dir.js';

export const repoRoot = path.resolve(import.meta.dirname, '..');

/** The credentials of every gateway the kit starts, unless a caller sets its own. */
export const gatewayCredentials = {
  gamerToken: 'kit-gamer-token-0123456789abcdef',
  operatorToken: 'kit-operator-token-0123456789abcdef',
  orchestratorSecret: 'kit-orchestrator-secret-0123456789',
  masterSecret: 'kit-master-secret-0123456789abcdef-0123456789abcdef',
};

/** `gatewayCredentials` as the environment variables a gateway reads them from. */
export const gatewayCredentialsEnv: Readonly<Record<string, string>> = {
  VCA_GAMER_TOKENS: gatewayCredentials.gamerToken,
  VCA_OPERATOR_TOKENS: gatewayCredentials.operatorToken,
  VCA_ORCHESTRATOR_SECRET: gatewayCredentials.orchestratorSecret,
  VCA_MASTER_SECRET: gatewayCredentials.masterSecret,
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `over` merged into a copy of `base`, objects key by key at every depth; `base` is not changed. */
export function mergeSettings(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(base);
  for (const [key, value] of Object.entries(over)) {
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? mergeSettings(out[key], value) : value;
  }
  return out;
}

/** Writes `settings` as the YAML behind VCA_CONFIG, in a temp dir removed by `remove()` or at exit. */
export function writeGatewayConfig(settings: Record<string, unknown>): { file: string; remove(): void } {
  const { dir, remove } = tempDir('vca-gateway-');
  const file = path.join(dir, 'vca.yaml');
  writeFileSync(file, stringifyYaml(settings));
  return { file, remove };
}

export interface GatewayProcessOptions {
  /**
   * Variables over a clean environment (PATH, HOME, HOST=127.0.0.1): nothing else of this process's,
   * such as its VCA_* or NODE_OPTIONS, reaches the gateway. PORT unset or 0: any free port, learnt
   * from the "gateway listening" log line (which needs VCA_LOG_LEVEL info or finer).
   */
  env?: Record<string, string>;
  /** Names the process in errors and echoed lines. */
  name?: string;
  /** Runs the production build, `dist/src/main.js` (compiled once per process), not `src/main.ts`. */
  build?: boolean;
  /** Node flags before the script (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Runs the gateway through bash with `ulimit -n` raised to this (or as far as the hard limit allows). */
  raiseFileLimit?: number;
  /** Copies each output line to this process's stderr, so a benchmark's gateway warnings stay visible. */
  echo?: boolean;
  /** How long the gateway may take to listen and be ready (tsx compiles src/ at every start). */
  startupTimeoutMs?: number;
}

/** A gateway child process, listening or not. */
export interface SpawnedGateway {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last log lines, stdout and stderr, for assertions and failure messages. */
  readonly output: string[];
  /** Log lines at level error or above (the first 200), and anything on stderr. */
  readonly errors: string[];
  /** Error lines that always mean a bug: a route that threw (500) or an unhandled rejection. */
  bugs(): string[];
  /**
   * The first JSON log line that `predicate` accepts, already logged or to come; rejects when the
   * process ends first or after `timeoutMs`.
   */
  logLine(predicate: (entry: any) => boolean, timeoutMs?: number): Promise<any>;
  /** Settles once the process has exited and its output is read to the end. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True while the process runs. */
  alive(): boolean;
  /** Sends `signal` (no waiting). */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** A gateway that listens and answers /readyz. */
export interface GatewayProcess extends SpawnedGateway {
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
}

const defaultStartupTimeoutMs = 30_000;
const keptOutputLines = 400;
const parentWatch = path.join(repoRoot, 'kit/parent-watch.ts');
const gateways = new Set<ChildProcess>();

let built = false;
/** Compiles the gateway to dist/ once per process, so a benchmark measures the production build. */
function buildGatewayOnce(): void {
  if (built) return;
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'inherit' });
  built = true;
}

/** Starts a gateway and returns at once: for a test of start-up itself (a refused config, say). */
export function spawnGatewayProcess(options: GatewayProcessOptions = {}): SpawnedGateway {
  const name = options.name ?? 'gateway';
  if (options.build) buildGatewayOnce();
  // tsx stays loaded for the build too: the parent watch is TypeScript.
  const args = [
    ...(options.nodeFlags ?? []),
    ...['--import', 'tsx', '--import', parentWatch],
    path.join(repoRoot, options.build ? 'dist/src/main.js' : 'src/main.ts'),
  ];
  let command = process.execPath;
  let argv = args;
  if (options.raiseFileLimit) {
    // exec keeps the pid: /proc/<pid> is the node process itself.
    command = 'bash';
    argv = [
      '-c',
      `ulimit -n ${options.raiseFileLimit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`,
      process.execPath,
      ...args,
    ];
  }
  const child = killOnExit(
    spawn(command, argv, {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: host, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  gateways.add(child);
  const output: string[] = [];
  const errors: string[] = [];
  const lineListeners = new Set<(line: string) => void>();
  const collect = (isStderr: boolean) => {
    let partial = '';
    return (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        output.push(line);
        if (errors.length < 200 && (isStderr || /"level":(50|60)/.test(line))) errors.push(line);
        if (options.echo) process.stderr.write(`[${name}] ${line}\n`);
        for (const listener of lineListeners) listener(line);
      }
      if (output.length > keptOutputLines) output.splice(0, output.length - keptOutputLines);
    };
  };
  child.stdout!.on('data', collect(false));
  child.stderr!.on('data', collect(true));
  // 'close', not 'exit': the output is complete by then.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      gateways.delete(child);
      resolve({ code, signal });
    }),
  );
  let closed = false;
  void exited.then(() => {
    closed = true;
  });
  const describe = () => `${name} (pid ${child.pid}) output:\n${output.slice(-60).join('\n')}`;
  const alive = () => child.exitCode === null && child.signalCode === null;

  const logLine = (predicate: (entry: any) => boolean, timeoutMs = defaultStartupTimeoutMs) =>
    new Promise<any>((resolve, reject) => {
      const match = (line: string): unknown => {
        try {
          const entry = JSON.parse(line);
          return predicate(entry) ? entry : undefined;
        } catch {
          return undefined;
        }
      };
      for (const line of output) {
        const entry = match(line);
        if (entry !== undefined) return resolve(entry);
      }
      if (closed) return reject(new Error(`${name} ended without logging the line\n${describe()}`));
      const onLine = (line: string) => {
        const entry = match(line);
        if (entry === undefined) return;
        cleanup();
        resolve(entry);
      };
      const onClose = () => {
        cleanup();
        reject(new Error(`${name} ended without logging the line\n${describe()}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${name}: no matching log line within ${timeoutMs} ms\n${describe()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        lineListeners.delete(onLine);
        child.off('close', onClose);
      };
      lineListeners.add(onLine);
      child.once('close', onClose);
    });

  return {
    name,
    child,
    pid: child.pid!,
    output,
    errors,
    bugs: () =>
      errors.filter((line) =>
        /"msg":"(route failed|unhandled rejection)"|uncaught|TypeError|RangeError/i.test(line),
      ),
    logLine,
    exited,
    alive,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (alive()) child.kill(signal);
    },
    async stop(graceMs = 5_000) {
      if (!alive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts a gateway and resolves once it listens and /readyz answers 200; SIGKILLs it on failure. */
export async function startGatewayProcess(options: GatewayProcessOptions = {}): Promise<GatewayProcess> {
  const startupTimeoutMs = options.startupTimeoutMs ?? defaultStartupTimeoutMs;
  const gateway = spawnGatewayProcess(options);
  const fixedPort = Number(options.env?.PORT ?? 0);
  const ended = gateway.exited.then(({ code, signal }) => {
    throw new Error(`${gateway.name} exited (code ${code}, signal ${signal}) before it was ready`);
  });
  ended.catch(() => {});
  try {
    const port =
      fixedPort > 0
        ? fixedPort
        : Number(
            (await gateway.logLine((entry) => entry.msg === 'gateway listening', startupTimeoutMs)).port,
          );
    const url = `http://${host}:${port}`;
    const ready = eventually(
      async () => {
        const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`/readyz answered ${response.status}`);
      },
      // On a fixed port the start-up itself happens while polling.
      {
        timeoutMs: fixedPort > 0 ? startupTimeoutMs : 10_000,
        intervalMs: 50,
        what: `${gateway.name} /readyz`,
      },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${gateway.name} output:\n${gateway.output.slice(-60).join('\n')}`);
    });
    await Promise.race([ready, ended]);
    return { ...gateway, url, wsUrl: `ws://${host}:${port}`, port };
  } catch (error) {
    gateway.kill('SIGKILL');
    throw error;
  }
}

/** SIGKILLs every gateway the kit started that still runs, and waits until each is gone. */
export async function stopAllGatewayProcesses(): Promise<void> {
  await Promise.all(
    [...gateways].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** A node to register: its GPUs are `gpuCount` of one `model`. */
export interface NodeToRegister {
  id: string;
  model: string;
  gpuCount?: number;
  labels?: Record<string, string>;
  /** Where gamers are sent; the loopback address unless given. */
  host?: string;
}

export interface RegisteredNode {
  id: string;
  /** The node's bearer token (telemetry). */
  token: string;
  /** The key the node verifies its session tickets with. */
  ticketKey: string;
  gpuCount: number;
}

let hookEvents = 0;

/**
 * Registers `nodes` on the gateway at `url` through signed contextualize webhooks, at most 100 nodes
 * per call as an orchestrator batches them.
 */
export async function registerNodes(
  url: string,
  nodes: readonly NodeToRegister[],
  orchestratorSecret = gatewayCredentials.orchestratorSecret,
): Promise<RegisteredNode[]> {
  const registered: RegisteredNode[] = [];
  for (let start = 0; start < nodes.length; start += 100) {
    const batch = nodes.slice(start, start + 100);
    const raw = JSON.stringify({
      eventId: `kit-up-${process.pid}-${Date.now()}-${++hookEvents}`,
      event: 'scale-up',
      group: 'kit',
      nodes: batch.map((node) => ({
        id: node.id,
        host: node.host ?? host,
        port: 5900,
        protocol: 'webrtc',
        gpus: [{ model: node.model, count: node.gpuCount ?? 1 }],
        labels: node.labels ?? {},
      })),
    });
    const t = Math.floor(Date.now() / 1000);
    const response = await fetch(`${url}/v1/hooks/contextualize`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-vca-signature': `t=${t},v1=${signBody(orchestratorSecret, t, raw)}`,
      },
      body: raw,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status !== 200) {
      throw new Error(`registration of ${batch[0]!.id}.. failed: ${response.status} ${text.slice(0, 500)}`);
    }
    const answer = JSON.parse(text) as {
      registered: Array<{ id: string; token: string; ticketKey: string }>;
    };
    const gpuCounts = new Map(batch.map((node) => [node.id, node.gpuCount ?? 1]));
    for (const { id, token, ticketKey } of answer.registered) {
      registered.push({ id, token, ticketKey, gpuCount: gpuCounts.get(id) ?? 1 });
    }
  }
  return registered;
}

/** Sends idle telemetry for `node`, as its probe does; throws unless the gateway answers 200. */
export async function reportIdle(url: string, node: RegisteredNode, timeoutMs = 10_000): Promise<void> {
  const response = await fetch(`${url}/v1/nodes/${encodeURIComponent(node.id)}/telemetry`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${node.token}` },
    body: JSON.stringify({ gpus: idleGpus(node.gpuCount) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`telemetry of ${node.id} failed: ${response.status} ${text.slice(0, 500)}`);
  }
}
