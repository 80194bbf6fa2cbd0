/**
 * A real, throw-away Redis Sentinel deployment for tests: a master, its replica and one sentinel watching
 * them, each on a free port on 127.0.0.1, nothing saved, their files in a temp dir removed by stop().
 * failover() kills the master for real, so a test sees what a client sees when Redis fails over.
 * There is no fake Redis: when redis-server is missing the suite fails loudly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { stopChild } from './child-processes.js';
import { freePort, host } from './free-port.js';
import { command, type Launched, launch, requireRedisBinaries, waitFor } from './redis-process.js';
import { tempDir } from './temp-dir.js';

export interface RedisSentinelSetup {
  readonly masterName: string;
  readonly sentinels: Array<{ host: string; port: number }>;
  readonly masterPort: number;
  readonly replicaPort: number;
  /**
   * Kills the master (SIGKILL) and resolves once the sentinel reports the replica as the new master.
   * Once per setup: afterwards no replica is left to promote.
   */
  failover(): Promise<void>;
  /** Kills every process and removes the temp dir; calling it again does nothing. */
  stop(): Promise<void>;
}

const masterName = 'vca-master';

async function masterPortSeenBySentinel(sentinelPort: number): Promise<number | undefined> {
  const address = (await command(sentinelPort, 'SENTINEL', 'get-master-addr-by-name', masterName)) as
    | [string, string]
    | null;
  return address ? Number(address[1]) : undefined;
}

export async function startRedisSentinel(): Promise<RedisSentinelSetup> {
  requireRedisBinaries(['redis-server']);
  const { dir, remove } = tempDir('vca-redis-sentinel-');
  const [masterPort, replicaPort, sentinelPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const dataServer = (role: string, port: number, extra: string[]): Launched => {
    // Each server works in its own dir: a replica writes the RDB it receives from the master there.
    const workDir = path.join(dir, role);
    fs.mkdirSync(workDir);
    return launch(role, [
      ...['--port', String(port), '--bind', host, '--dir', workDir, '--save', '', '--appendonly', 'no'],
      // The default waits 5 s for more replicas before the first full sync.
      ...['--repl-diskless-sync-delay', '0'],
      ...extra,
    ]);
  };
  const processes: Launched[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= Promise.all(processes.map(({ child }) => stopChild(child))).then(remove);
    return stopped;
  };

  try {
    const master = dataServer('master', masterPort, []);
    const replica = dataServer('replica', replicaPort, ['--replicaof', host, String(masterPort)]);
    processes.push(master, replica);
    const starting = { alive: processes, timeoutMs: 10_000, intervalMs: 20 };
    await waitFor(
      'replica in sync with master',
      async () => String(await command(replicaPort, 'INFO', 'replication')).includes('master_link_status:up'),
      starting,
    );

    // Sentinel rewrites its config file (its id, the replicas it found): it must be a writable file.
    const config = path.join(dir, 'sentinel.conf');
    fs.writeFileSync(
      config,
      [
        `port ${sentinelPort}`,
        `bind ${host}`,
        `sentinel monitor ${masterName} ${host} ${masterPort} 1`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        '',
      ].join('\n'),
    );
    const sentinel = launch('sentinel', [config, '--sentinel']);
    processes.push(sentinel);
    await waitFor(
      'sentinel watching master and replica',
      async () =>
        (await masterPortSeenBySentinel(sentinelPort)) === masterPort &&
        ((await command(sentinelPort, 'SENTINEL', 'replicas', masterName)) as unknown[]).length > 0,
      starting,
    );

    return {
      masterName,
      sentinels: [{ host, port: sentinelPort }],
      masterPort,
      replicaPort,
      async failover() {
        await stopChild(master.child);
        await waitFor(
          `sentinel promoting the replica on port ${replicaPort}`,
          async () => (await masterPortSeenBySentinel(sentinelPort)) === replicaPort,
          {
            alive: [replica, sentinel],
            timeoutMs: 20_000,
            intervalMs: 100,
            view: async () =>
              `Sentinel's master: ${JSON.stringify(await command(sentinelPort, 'SENTINEL', 'master', masterName))}. ` +
              `Sentinel's log: ${sentinel.output()}`,
          },
        );
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
