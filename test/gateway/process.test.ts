import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

const credentials = {
  VCA_GAMER_TOKENS: 'process-gamer-token-0123456789',
  VCA_OPERATOR_TOKENS: 'process-operator-token-0123456789',
  VCA_ORCHESTRATOR_SECRET: 'process-orchestrator-secret-0123456789',
  VCA_MASTER_SECRET: 'process-master-secret-0123456789abcdef-0123456789abcdef',
};

/** A port that was free a moment ago: the gateway logs the port it binds, but not before it binds it. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface GatewayProcess {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** Resolves with the first JSON log line matching `predicate`, waiting up to `timeoutMs`. */
  logLine(predicate: (entry: any) => boolean, timeoutMs?: number): Promise<any>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: ChildProcess[] = [];
/** tsx compiles src/ at every start: seconds on an idle machine, far more on a loaded CI runner. */
const startupTimeoutMs = 30_000;
const testTimeoutMs = 60_000;

function startGatewayProcess(env: Record<string, string>): GatewayProcess {
  // A clean environment: nothing from the test runner's VCA_* or NODE_OPTIONS leaks into the gateway.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const listeners = new Set<() => void>();
  const collect = (into: string[]) => {
    let partial = '';
    return (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      into.push(...lines.filter(Boolean));
      for (const listener of listeners) listener();
    };
  };
  child.stdout!.on('data', collect(stdout));
  child.stderr!.on('data', collect(stderr));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const parsed = () =>
    stdout.flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    });
  return {
    child,
    stdout,
    stderr,
    exited,
    logLine(predicate, timeoutMs = startupTimeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = parsed().find(predicate);
          if (found === undefined) return false;
          cleanup();
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no matching log line within ${timeoutMs} ms\nstdout: ${stdout.join('\n')}\nstderr: ${stderr.join('\n')}`,
            ),
          );
        }, timeoutMs);
        const onExit = () => {
          if (check()) return;
          cleanup();
          reject(
            new Error(`gateway exited early\nstdout: ${stdout.join('\n')}\nstderr: ${stderr.join('\n')}`),
          );
        };
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        if (check()) return;
        listeners.add(check);
        child.once('exit', onExit);
      });
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref(),
    ),
  ]);
}

afterAll(() => {
  for (const child of running.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

// Each test starts its own process on its own port, so they run side by side (tsx start-up dominates).
describe.concurrent('process: the real gateway as a child process', () => {
  it(
    'on SIGTERM tells WebSocket clients {type:"shutdown"}, closes them with 1001 and exits 0',
    async () => {
      const port = await freePort();
      const gateway = startGatewayProcess({ ...credentials, PORT: String(port), VCA_LOG_LEVEL: 'info' });
      const listening = await gateway.logLine((entry) => entry.msg === 'gateway listening');
      expect(listening).toMatchObject({ port, store: 'embedded' });

      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      const catalog = await fetch(`http://127.0.0.1:${port}/v1/catalog`, {
        headers: { authorization: `Bearer ${credentials.VCA_GAMER_TOKENS}` },
      });
      expect(catalog.status).toBe(200);

      const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/play?token=${credentials.VCA_GAMER_TOKENS}`);
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      const messages: any[] = [];
      socket.on('message', (data) => messages.push(JSON.parse(String(data))));
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));

      const signalledAt = Date.now();
      gateway.child.kill('SIGTERM');
      const closeCode = await withTimeout(closed, 10_000, 'WebSocket close');
      const exit = await withTimeout(gateway.exited, 10_000, 'process exit');
      expect(closeCode).toBe(1001);
      expect(messages).toContainEqual({ type: 'shutdown' });
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalledAt).toBeLessThan(10_000);
      expect(gateway.stdout.some((line) => line.includes('"msg":"gateway stopped"'))).toBe(true);
    },
    testTimeoutMs,
  );

  it(
    'exits with code 78 (EX_CONFIG) naming placement.strategy when VCA_PLACEMENT_STRATEGY is invalid',
    async () => {
      const port = await freePort();
      const gateway = startGatewayProcess({
        ...credentials,
        PORT: String(port),
        VCA_LOG_LEVEL: 'info',
        VCA_PLACEMENT_STRATEGY: 'random',
      });
      const exit = await withTimeout(gateway.exited, startupTimeoutMs, 'process exit');
      expect(exit.code).toBe(78);
      const output = [...gateway.stderr, ...gateway.stdout].join('\n');
      expect(output).toContain('placement.strategy');
      expect(output).toContain('VCA_PLACEMENT_STRATEGY');
      expect(gateway.stdout.some((line) => line.includes('gateway listening'))).toBe(false);
    },
    testTimeoutMs,
  );

  it(
    'without credentials generates development ones, logs them and starts; the generated tokens work',
    async () => {
      const port = await freePort();
      const gateway = startGatewayProcess({ PORT: String(port), VCA_LOG_LEVEL: 'info' });
      const warning = await gateway.logLine((entry) => entry.generated !== undefined);
      expect(warning.level).toBe(40);
      const { generated } = warning;
      for (const name of [
        'VCA_GAMER_TOKENS',
        'VCA_OPERATOR_TOKENS',
        'VCA_ORCHESTRATOR_SECRET',
        'VCA_MASTER_SECRET',
      ]) {
        expect(typeof generated[name], name).toBe('string');
        expect(generated[name].length, name).toBeGreaterThanOrEqual(16);
      }
      expect(Buffer.byteLength(generated.VCA_MASTER_SECRET)).toBeGreaterThanOrEqual(32);
      await gateway.logLine((entry) => entry.msg === 'gateway listening');

      const asGamer = await fetch(`http://127.0.0.1:${port}/v1/catalog`, {
        headers: { authorization: `Bearer ${generated.VCA_GAMER_TOKENS}` },
      });
      expect(asGamer.status).toBe(200);
      const asOperator = await fetch(`http://127.0.0.1:${port}/v1/nodes`, {
        headers: { authorization: `Bearer ${generated.VCA_OPERATOR_TOKENS}` },
      });
      expect(asOperator.status).toBe(200);
      const aodh = await fetch(`http://127.0.0.1:${port}/v1/hooks/aodh`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-vca-hook-secret': generated.VCA_ORCHESTRATOR_SECRET,
        },
        body: JSON.stringify({ alarm_id: 'a-1', current: 'ok', previous: 'alarm' }),
      });
      expect(aodh.status).toBe(200);

      gateway.child.kill('SIGTERM');
      expect(await withTimeout(gateway.exited, 10_000, 'process exit')).toEqual({ code: 0, signal: null });
    },
    testTimeoutMs,
  );
});
