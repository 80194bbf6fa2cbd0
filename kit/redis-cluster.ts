/**
 * A real, throw-away Redis Cluster for tests: three masters on 127.0.0.1 sharing the 16384 slots, no
 * replicas, nothing saved, their files in a temp dir removed by stop(). There is no fake Redis: when
 * redis-server or redis-cli is missing the suite fails loudly.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stopChild } from './child-processes.js';
import { canListen, host } from './free-port.js';
import { command, type Launched, launch, requireRedisBinaries, waitFor } from './redis-process.js';
import { tempDir } from './temp-dir.js';

export interface RedisClusterSetup {
  /** The three masters: any of them is a seed for `new Cluster(nodes)`. */
  readonly nodes: Array<{ host: string; port: number }>;
  /** Kills every node and removes the temp dir; calling it again does nothing. */
  stop(): Promise<void>;
}

const nodeCount = 3;
/** Redis Cluster's node-to-node bus listens on the client port + 10000. */
const busOffset = 10_000;

/**
 * Ports drawn from 20000–29999, so that their bus ports (30000–39999) can never be one of the others'
 * client ports; both must be free now.
 */
async function freeClusterPorts(): Promise<number[]> {
  const ports: number[] = [];
  for (let attempt = 0; ports.length < nodeCount; attempt++) {
    if (attempt === 200)
      throw new Error(`no ${nodeCount} free port pairs (P, P + ${busOffset}) in 20000–39999`);
    const port = 20_000 + Math.floor(Math.random() * busOffset);
    if (ports.includes(port)) continue;
    if ((await canListen(port)) && (await canListen(port + busOffset))) ports.push(port);
  }
  return ports;
}

function createCluster(ports: number[]): Promise<void> {
  const args = ['--cluster', 'create', ...ports.map((port) => `${host}:${port}`)];
  return new Promise((resolve, reject) => {
    // redis-cli waits for the nodes to agree on the slots; the timeout keeps a stuck join from hanging the suite.
    execFile(
      'redis-cli',
      [...args, '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 15_000 },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`redis-cli --cluster create failed: ${error.message}\n${stdout}${stderr}`))
          : resolve(),
    );
  });
}

export async function startRedisCluster(): Promise<RedisClusterSetup> {
  requireRedisBinaries(['redis-server', 'redis-cli']);
  const { dir, remove } = tempDir('vca-redis-cluster-');
  const ports = await freeClusterPorts();
  const launched: Launched[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= Promise.all(launched.map(({ child }) => stopChild(child))).then(remove);
    return stopped;
  };

  try {
    for (const port of ports) {
      const workDir = path.join(dir, String(port));
      fs.mkdirSync(workDir);
      launched.push(
        launch(`cluster node ${port}`, [
          ...['--port', String(port), '--bind', host, '--dir', workDir, '--save', '', '--appendonly', 'no'],
          ...['--cluster-enabled', 'yes', '--cluster-config-file', path.join(workDir, `nodes-${port}.conf`)],
          ...['--cluster-node-timeout', '2000'],
        ]),
      );
    }
    const clusterInfo = async () =>
      (await Promise.all(ports.map((port) => command(port, 'CLUSTER', 'INFO')))).map(String);
    await waitFor(
      'cluster nodes answering',
      async () =>
        (await Promise.all(ports.map((port) => command(port, 'PING')))).every((pong) => pong === 'PONG'),
      { alive: launched, timeoutMs: 10_000, intervalMs: 50 },
    );
    await createCluster(ports);
    await waitFor(
      'every cluster node reporting cluster_state:ok',
      async () => (await clusterInfo()).every((info) => info.includes('cluster_state:ok')),
      {
        alive: launched,
        timeoutMs: 15_000,
        intervalMs: 50,
        view: async () =>
          (await clusterInfo()).map((info, i) => `${ports[i]}: ${info.replace(/\r\n/g, ' ')}`).join('\n'),
      },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes: ports.map((port) => ({ host, port })), stop };
}
