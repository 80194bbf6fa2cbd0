import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { killOnExit, stopChild } from '../../kit/child-processes.js';
import { eventually } from '../../kit/polling.js';
import { tempDir } from '../../kit/temp-dir.js';
import { VcaError } from '../../src/errors.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

/** The haproxy binary on the PATH, or undefined (Debian: `apt-get install haproxy`; `.ci/run` installs it). */
function findHaproxy(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const haproxyBinary = findHaproxy();
const missingMessage = 'haproxy is not on the PATH: install it (apt-get install haproxy) to run this test';

/** One command on haproxy's stats socket, and its whole answer. */
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

/** The `status` column of `show stat` for `backend`/`server` (UP, DOWN, "DOWN 1/2", ...). */
async function serverStatus(socketPath: string, backend: string, server: string): Promise<string> {
  const [header, ...rows] = (await statsCommand(socketPath, 'show stat')).trim().split('\n');
  const columns = header!.replace(/^# /, '').split(',');
  const row = rows
    .map((line) => line.split(','))
    .find((cells) => cells[0] === backend && cells[1] === server);
  if (row === undefined) throw new Error(`no ${backend}/${server} in show stat`);
  return row[columns.indexOf('status')]!;
}

let gw: TestGateway | undefined;
let haproxy: ChildProcess | undefined;
afterAll(async () => {
  if (haproxy) await stopChild(haproxy, 2_000);
  await gw?.close();
});

describe('admin listener behind a real HAProxy', () => {
  const title = 'is marked UP by `option httpchk GET /readyz`, DOWN while the store does not answer';
  it(haproxyBinary === undefined ? `${title} [skipped: ${missingMessage}]` : title, async (context) => {
    if (haproxyBinary === undefined) {
      context.skip(missingMessage);
      return;
    }
    gw = await startTestGateway({
      server: {
        host: '127.0.0.1',
        port: 0,
        requestsPerSecondPerAddress: 100_000,
        requestBurst: 100_000,
        adminPort: 0,
      },
    });
    const adminPort = gw.gateway.adminPort!;
    const { dir } = tempDir('vca-haproxy-');
    const socketPath = path.join(dir, 'stats.sock');
    const configFile = path.join(dir, 'haproxy.cfg');
    // Loopback only, no frontend: the backend's health check is what is under test.
    writeFileSync(
      configFile,
      [
        'global',
        `  stats socket ${socketPath} mode 600 level admin`,
        'defaults',
        '  mode http',
        '  timeout connect 1s',
        '  timeout client 5s',
        '  timeout server 5s',
        '  timeout check 1s',
        'backend vca_admin',
        '  option httpchk GET /readyz',
        '  http-check expect status 200',
        `  server vca 127.0.0.1:${adminPort} check inter 200ms fall 2 rise 1`,
        '',
      ].join('\n'),
    );
    const output: string[] = [];
    haproxy = killOnExit(
      spawn(haproxyBinary, ['-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    haproxy.stdout!.on('data', (chunk) => output.push(String(chunk)));
    haproxy.stderr!.on('data', (chunk) => output.push(String(chunk)));
    const what = () => `haproxy output:\n${output.join('')}`;

    await eventually(
      async () => expect(await serverStatus(socketPath, 'vca_admin', 'vca'), what()).toBe('UP'),
      { timeoutMs: 10_000, intervalMs: 100, what: 'haproxy marks the admin listener UP' },
    );

    const ping = vi
      .spyOn(gw.gateway.vca.store, 'ping')
      .mockRejectedValue(new VcaError('VCA_ERR_STORE_UNAVAILABLE', 'store down for the test'));
    try {
      await eventually(
        async () => expect(await serverStatus(socketPath, 'vca_admin', 'vca'), what()).toMatch(/^DOWN/),
        { timeoutMs: 10_000, intervalMs: 100, what: 'haproxy marks the admin listener DOWN' },
      );
    } finally {
      ping.mockRestore();
    }
    await eventually(
      async () => expect(await serverStatus(socketPath, 'vca_admin', 'vca'), what()).toBe('UP'),
      { timeoutMs: 10_000, intervalMs: 100, what: 'haproxy marks the admin listener UP again' },
    );
  }, 40_000);
});
