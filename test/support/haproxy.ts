/**
 * Test support: a real HAProxy (Debian's `haproxy` package) started from a configuration text, with
 * its stats socket for reading what its health checks saw. Loopback only.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { killOnExit, stopChild } from '../../kit/child-processes.js';
import { tempDir } from '../../kit/temp-dir.js';

/** The haproxy binary on the PATH, or undefined. */
export function findHaproxy(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export const haproxyMissing =
  'haproxy is not on the PATH: install it (apt-get install haproxy) to run this test';

export interface RunningHaproxy {
  /** Everything haproxy printed so far (for assertion messages). */
  output(): string;
  /** `show stat` as rows of named columns. */
  stats(): Promise<Array<Record<string, string>>>;
  stop(): Promise<void>;
}

function statsCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    socket.once('connect', () => socket.write(`${command}\n`));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.once('error', reject);
  });
}

/** Starts `binary` with `body` (everything after the `global` section, which this adds with the stats socket). */
export function startHaproxy(binary: string, body: string): RunningHaproxy {
  const { dir, remove } = tempDir('vca-haproxy-');
  const socketPath = path.join(dir, 'stats.sock');
  const configFile = path.join(dir, 'haproxy.cfg');
  writeFileSync(configFile, `global\n  stats socket ${socketPath} mode 600 level admin\n${body}\n`);
  const lines: string[] = [];
  const child: ChildProcess = killOnExit(
    spawn(binary, ['-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  child.stdout!.on('data', (chunk) => lines.push(String(chunk)));
  child.stderr!.on('data', (chunk) => lines.push(String(chunk)));
  return {
    output: () => lines.join(''),
    async stats() {
      const [header, ...rows] = (await statsCommand(socketPath, 'show stat')).trim().split('\n');
      const columns = header!.replace(/^# /, '').split(',');
      return rows.map((line) => {
        const cells = line.split(',');
        return Object.fromEntries(columns.map((column, index) => [column, cells[index] ?? '']));
      });
    },
    async stop() {
      await stopChild(child, 2_000);
      remove();
    },
  };
}
