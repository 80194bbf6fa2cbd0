/**
 * A real, throw-away redis-server for tests and benchmarks: a free port on 127.0.0.1, no persistence,
 * stopped by whoever started it (and killed when that process exits). There is no fake Redis: when
 * redis-server is missing the suite fails loudly.
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { stopChild } from './child-processes.js';
import { freePort, host } from './free-port.js';
import { type Launched, launch, requireRedisBinaries } from './redis-process.js';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** The server process's id (it changes on restart), for CPU readings and pinning. */
  readonly pid: number;
  /** Kills the server (its data is gone: nothing is saved). */
  stop(): Promise<void>;
  /** Stops it and starts an empty one on the same port. */
  restart(): Promise<void>;
}

/** Resolves once the server answers PING with PONG on a raw socket. */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('utf8');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

async function waitUntilAnswering(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`redis-server exited with code ${child.exitCode}: ${output()}`);
    }
    if (await pingOnce(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s: ${output()}`);
}

/** One server on `port`, nothing saved. */
function launchServer(port: number): Launched {
  return launch('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', host]);
}

export async function startRedisServer(): Promise<RedisServer> {
  requireRedisBinaries();
  const port = await freePort();
  let current = launchServer(port);
  await waitUntilAnswering(port, current.child, current.output);
  return {
    url: `redis://${host}:${port}`,
    port,
    get pid() {
      return current.child.pid!;
    },
    stop: () => stopChild(current.child),
    async restart() {
      await stopChild(current.child);
      current = launchServer(port);
      await waitUntilAnswering(port, current.child, current.output);
    },
  };
}
