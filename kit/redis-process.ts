/**
 * Process plumbing shared by the kit's Redis deployments (redis-server.ts, redis-sentinel.ts,
 * redis-cluster.ts): checking the binaries, launching redis-server with its output kept, killing,
 * one-off commands and polling with a useful error.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { killOnExit } from './child-processes.js';
import { host } from './free-port.js';

/** Fails loudly, naming the Debian packages, when a binary the tests run is missing. */
export function requireRedisBinaries(binaries: readonly string[] = ['redis-server']): void {
  for (const binary of binaries) {
    const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      throw new Error(
        `${binary} is not installed: run \`apt-get install redis-server redis-tools\` (Debian) — .ci/run installs them`,
      );
    }
  }
}

export interface Launched {
  readonly name: string;
  readonly child: ChildProcess;
  output(): string;
}

export function launch(name: string, args: string[]): Launched {
  // A process that dies without stop() must not leave its servers behind.
  const child = killOnExit(spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-4_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { name, child, output: () => log };
}

/** Sends one command on a fresh connection that never retries: a dead server rejects at once. */
export async function command(port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({
    host,
    port,
    lazyConnect: true,
    connectTimeout: 500,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // Failures surface as the rejected command; without a listener ioredis would also print them.
  client.on('error', () => {});
  try {
    await client.connect();
    const [name, ...rest] = args as [string, ...string[]];
    return await client.call(name, ...rest);
  } finally {
    client.disconnect();
  }
}

/**
 * Polls `check` until it holds. Fails early, with its log, when one of `alive` exits; on timeout fails
 * with `view()`, what the deployment looked like (by default the logs of `alive`).
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  options: { alive: Launched[]; timeoutMs: number; intervalMs: number; view?: () => Promise<string> },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    for (const { name, child, output } of options.alive) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${name} exited (${child.exitCode ?? child.signalCode}) while waiting for ${what}: ${output()}`,
        );
      }
    }
    if (await check().catch(() => false)) return;
    if (Date.now() >= deadline) {
      const logs = async () => options.alive.map(({ name, output }) => `${name}: ${output()}`).join('\n');
      const view = await (options.view ?? logs)().catch((error) => `(no view: ${error})`);
      throw new Error(`${what}: not within ${options.timeoutMs / 1000} s. ${view}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
}
