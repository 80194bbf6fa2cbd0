import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './support/fake-smi.js';
import { findGanglia, RealGmond } from './support/gmond.js';

const ganglia = findGanglia();
const skipReason = typeof ganglia === 'string' ? ganglia : null;
if (skipReason) console.warn(`gpu-probe gmond tests: ${skipReason}`);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function gmond(): Promise<RealGmond> {
  const started = await RealGmond.start();
  cleanups.push(() => started.stop());
  return started;
}

/** What the nvidia module announces for one GPU, as gmetric arguments (its names and units). */
function gpuMetrics(index: number, values: Record<string, [string, string]>, spoof?: string): string[][] {
  return Object.entries(values).map(([suffix, [value, units]]) => [
    '-n',
    suffix === 'gpu_num' ? 'gpu_num' : `gpu${index}_${suffix}`,
    '-v',
    value,
    '-t',
    units === 'string' ? 'string' : 'uint32',
    '-u',
    units === 'string' ? '' : units,
    '-g',
    'gpu',
    ...(spoof ? ['-S', spoof] : []),
  ]);
}

describe.skipIf(skipReason !== null)('gpu-probe --source gmond: a real gmond fed by gmetric', () => {
  it('prints the telemetry of the GPU metrics injected under the module names', async () => {
    const server = await gmond();
    const metrics = gpuMetrics(0, {
      gpu_num: ['1', 'GPUs'],
      type: ['NVIDIA L4', 'string'],
      util: ['37', '%'],
      mem_util: ['12', '%'],
      fb_memory: ['2113', 'MB'],
      mem_total: ['23034', 'MB'],
      temp: ['54', 'C'],
      power_usage_report: ['41', 'watts'],
      power_man_limit: ['72', 'Watts'],
      encoder_util: ['18', '%'],
    });
    for (const args of metrics) await server.gmetric(args);

    const run = await runCli([
      '--once',
      '--source',
      `gmond=127.0.0.1:${server.tcpPort}`,
      '--log-level',
      'warn',
    ]);
    expect(run.code, `stderr: ${run.stderr}; gmond: ${server.log}`).toBe(0);
    const document = JSON.parse(run.stdout);
    expect(document.gpus).toEqual([
      {
        index: 0,
        uuid: null,
        name: 'NVIDIA L4',
        utilizationGpu: 37,
        utilizationMemory: 12,
        utilizationEncoder: 18,
        utilizationDecoder: null,
        temperatureGpu: 54,
        memoryUsed: 2113,
        memoryTotal: 23034,
        powerDraw: 41,
        powerLimit: 72,
        encoderSessions: null,
        encoderAvgFps: null,
        throttleActive: null,
      },
    ]);
    expect(typeof document.ts).toBe('number');
  });

  it('picks this node by --gmond-host among several hosts, and reads the old module names', async () => {
    const server = await gmond();
    const hosts = [
      ...gpuMetrics(0, { util: ['5', '%'], type: ['NVIDIA L40S', 'string'] }, '10.1.1.1:render-a'),
      ...gpuMetrics(
        0,
        { util: ['64', '%'], mem_used: ['1048576', 'KB'], power_usage: ['98765', 'watts'] },
        '10.1.1.2:render-b',
      ),
    ];
    for (const args of hosts) await server.gmetric(args);

    const run = await runCli([
      '--once',
      '--source',
      `gmond=127.0.0.1:${server.tcpPort}`,
      '--gmond-host',
      'render-b',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).gpus[0]).toMatchObject({
      utilizationGpu: 64,
      memoryUsed: 1024,
      powerDraw: 98.765,
    });

    const missing = await runCli([
      '--once',
      '--source',
      `gmond=127.0.0.1:${server.tcpPort}`,
      '--gmond-host',
      'render-z',
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no host "render-z"');
  });

  it('gives no telemetry once the metrics are older than twice their TMAX, nor from a stopped gmond', async () => {
    const server = await gmond();
    await server.gmetric(['-n', 'gpu0_util', '-v', '37', '-t', 'uint32', '-u', '%', '-x', '1']);
    await new Promise((resolve) => setTimeout(resolve, 3200));
    const stale = await runCli(['--once', '--source', `gmond=127.0.0.1:${server.tcpPort}`]);
    expect(stale.code).toBe(1);
    expect(stale.stdout).toBe('');
    expect(stale.stderr).toContain('older than twice its TMAX');

    const port = server.tcpPort;
    await server.stop();
    const gone = await runCli(['--once', '--source', `gmond=127.0.0.1:${port}`]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('ECONNREFUSED');
  });
});
