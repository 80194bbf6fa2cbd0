import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pickHost, readingsFromGmondHost } from '../../gpu-probe/src/gmond-gpu-metrics.js';
import { GmondXmlError, readGmondXml } from '../../gpu-probe/src/gmond-xml.js';

const fixtureDir = path.resolve(import.meta.dirname, '../fixtures/gmond');
const dump = (file: string) => readGmondXml(readFileSync(path.join(fixtureDir, file), 'latin1'));

const unknownExtras = { encoderSessions: null, encoderAvgFps: null, throttleActive: null };

describe('gpu-probe gmond source: the XML dump and the nvidia module metrics', () => {
  it('has expectations for every capture in test/fixtures/gmond', () => {
    expect(
      readdirSync(fixtureDir)
        .filter((file) => file.endsWith('.xml'))
        .sort(),
    ).toEqual([
      'host-without-gpu-module.xml',
      'legacy-module-names.xml',
      'one-gpu.xml',
      'two-gpus-different-models.xml',
    ]);
  });

  it('reads one GPU with the units the module declares (MB = MiB, watts, C, %)', () => {
    const hosts = dump('one-gpu.xml');
    expect(hosts.map((host) => host.name)).toEqual(['render-1']);
    const { gpus, fresh } = readingsFromGmondHost(pickHost(hosts, 'some-other-name')!);
    expect(fresh).toBe(true);
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-2b7c3f51-9a0e-4d1b-8c55-0f3e6a1d2c44',
        name: 'NVIDIA L4',
        utilizationGpu: 37,
        utilizationMemory: 12,
        utilizationEncoder: 18,
        utilizationDecoder: 0,
        temperatureGpu: 54,
        memoryUsed: 2113,
        memoryTotal: 23034,
        powerDraw: 41,
        powerLimit: 72,
        ...unknownExtras,
      },
    ]);
  });

  it('reads two GPUs of different models, picks this node among hosts, and leaves a stale metric unknown', () => {
    const hosts = dump('two-gpus-different-models.xml');
    expect(hosts.map((host) => host.name)).toEqual(['render-2.example.net', 'render-9']);
    expect(pickHost(hosts, 'render-9')?.name).toBe('render-9');
    expect(pickHost(hosts, '10.0.0.12')?.name).toBe('render-2.example.net');
    expect(pickHost(hosts, 'RENDER-2')?.name).toBe('render-2.example.net');
    expect(pickHost(hosts, 'render-5')).toBeUndefined();
    const { gpus, fresh } = readingsFromGmondHost(pickHost(hosts, 'render-2.example.net')!);
    expect(fresh).toBe(true);
    expect(
      gpus.map((gpu) => [gpu.index, gpu.name, gpu.utilizationEncoder, gpu.memoryUsed, gpu.memoryTotal]),
    ).toEqual([
      [0, 'NVIDIA L40S', 63, 19876, 46068],
      [1, 'NVIDIA GeForce RTX 4080 SUPER', 72, 1474, 16376],
    ]);
    // gpu1_temp was announced with TMAX 1 s and is 3 s old in the dump: unknown, never a number.
    expect(gpus[1]!.temperatureGpu).toBeNull();
    expect(gpus[0]!.temperatureGpu).toBe(67);
  });

  it('reads the old module names: mem_used in KB, power_usage in NVML milliwatts under "watts"', () => {
    const { gpus } = readingsFromGmondHost(dump('legacy-module-names.xml')[0]!);
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: null,
        name: 'Tesla K20m',
        utilizationGpu: 64,
        utilizationMemory: 21,
        utilizationEncoder: null,
        utilizationDecoder: null,
        temperatureGpu: 58,
        memoryUsed: 1024,
        memoryTotal: 4799,
        powerDraw: 98.765,
        powerLimit: 225,
        ...unknownExtras,
      },
    ]);
  });

  it('finds no GPU on a host without the GPU module (gmond core metrics only)', () => {
    const hosts = dump('host-without-gpu-module.xml');
    expect(hosts).toHaveLength(1);
    expect(hosts[0]!.metrics.has('load_one')).toBe(true);
    expect(readingsFromGmondHost(hosts[0]!)).toEqual({ gpus: [], fresh: false });
  });

  it('treats every metric older than twice its TMAX as unknown, and then the host as not fresh', () => {
    const text = readFileSync(path.join(fixtureDir, 'one-gpu.xml'), 'latin1').replace(
      / TN="\d+"/g,
      ' TN="5000"',
    );
    const { gpus, fresh } = readingsFromGmondHost(readGmondXml(text)[0]!);
    expect(fresh).toBe(false);
    expect(gpus[0]).toMatchObject({ utilizationGpu: null, memoryUsed: null, powerDraw: null, name: null });
  });

  it('refuses what is not a whole gmond dump', () => {
    const text = readFileSync(path.join(fixtureDir, 'one-gpu.xml'), 'latin1');
    expect(() => readGmondXml(text.slice(0, text.length - 40))).toThrow(GmondXmlError);
    expect(() => readGmondXml('<html></html>')).toThrow(GmondXmlError);
    expect(readGmondXml('<GANGLIA_XML VERSION="3.7.2" SOURCE="gmond"></GANGLIA_XML>')).toEqual([]);
  });
});
