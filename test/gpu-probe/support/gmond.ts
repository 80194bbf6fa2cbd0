/**
 * Test support for the gmond source: a REAL Ganglia gmond (Debian's `ganglia-monitor`) with its config
 * in a temp dir — loopback-only UDP send/receive channel and TCP accept channel on free ports, no
 * multicast — and `gmetric`, which announces metrics to it over that UDP channel the way a gmond
 * module's values travel.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findExecutable } from '../../../gpu-probe/src/find-executable.js';

/** gmond and gmetric, or why the real-gmond tests cannot run here. */
export function findGanglia(): { gmond: string; gmetric: string } | string {
  const gmond = findExecutable('gmond') ?? findExecutable('/usr/sbin/gmond');
  const gmetric = findExecutable('gmetric');
  if (gmond && gmetric) return { gmond, gmetric };
  return 'gmond/gmetric not installed (apt-get install ganglia-monitor): real-gmond tests skipped';
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** The dump gmond answers on its TCP port, as text (gmond declares ISO-8859-1). */
export function readDump(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

export interface GmondOptions {
  /** Extra gmond.conf text (modules, collection groups). */
  extraConfig?: string;
}

export class RealGmond {
  private constructor(
    readonly tcpPort: number,
    readonly udpPort: number,
    readonly configFile: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
    private readonly gmetricPath: string,
    private readonly output: () => string,
  ) {}

  /** Starts gmond and waits until its TCP port answers with a dump. */
  static async start(options: GmondOptions = {}): Promise<RealGmond> {
    const found = findGanglia();
    if (typeof found === 'string') throw new Error(found);
    const [tcpPort, udpPort] = [await freeTcpPort(), await freeUdpPort()];
    const dir = mkdtempSync(path.join(tmpdir(), 'gmond-'));
    const configFile = path.join(dir, 'gmond.conf');
    writeFileSync(
      configFile,
      `globals {
  daemonize = no
  setuid = no
  debug_level = 0
  max_udp_msg_len = 1472
  mute = no
  deaf = no
  allow_extra_data = yes
  host_dmax = 3600
  host_tmax = 20
  cleanup_threshold = 300
  gexec = no
  send_metadata_interval = 5
}
cluster {
  name = "vca-test"
  owner = "vca"
}
udp_send_channel {
  host = 127.0.0.1
  port = ${udpPort}
  ttl = 1
}
udp_recv_channel {
  bind = 127.0.0.1
  port = ${udpPort}
}
tcp_accept_channel {
  bind = 127.0.0.1
  port = ${tcpPort}
}
${options.extraConfig ?? ''}
`,
    );
    const child = spawn(found.gmond, ['-c', configFile, '-f'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output = (output + chunk).slice(-4000);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      output = (output + chunk).slice(-4000);
    });
    const gmond = new RealGmond(tcpPort, udpPort, configFile, dir, child, found.gmetric, () => output);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        if ((await readDump(tcpPort)).includes('</GANGLIA_XML>')) return gmond;
      } catch {}
      if (child.exitCode !== null || Date.now() > deadline) {
        await gmond.stop();
        throw new Error(`gmond did not answer on 127.0.0.1:${tcpPort}; it said: ${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** `gmetric -c <this gmond's conf> <args>`: e.g. `['-n', 'gpu0_util', '-v', '37', '-t', 'uint32', '-u', '%']`. */
  gmetric(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(this.gmetricPath, ['-c', this.configFile, ...args], (error, _stdout, stderr) => {
        if (error) reject(new Error(`gmetric ${args.join(' ')} failed: ${stderr || error.message}`));
        else resolve();
      });
    });
  }

  dump(): Promise<string> {
    return readDump(this.tcpPort);
  }

  get log(): string {
    return this.output();
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const closed = new Promise((resolve) => this.child.once('close', resolve));
      this.child.kill('SIGTERM');
      const killTimer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await closed;
      clearTimeout(killTimer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
