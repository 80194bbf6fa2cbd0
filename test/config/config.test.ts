import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadCatalog, loadConfig } from '../../src/config/index.js';
import { buildCatalog } from '../../src/config/load-catalog.js';
import { CatalogIndex } from '../../src/cost/catalog.js';
import { parseResolution } from '../../src/cost/resolution.js';
import { sessionCost } from '../../src/cost/session-cost.js';
import { redisConnection } from '../../src/create-store.js';

function yamlFile(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vca-config-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, text);
  return file;
}

describe('config: loading', () => {
  it('loads config/default.yaml with the embedded store and packed placement', () => {
    const config = loadConfig({ env: {} });
    expect(config.store.kind).toBe('embedded');
    expect(config.placement.strategy).toBe('packed');
    expect(config.server.port).toBe(8080);
  });

  it('applies environment variables over the file, coerced to the schema type', () => {
    const config = loadConfig({
      env: { PORT: '9090', VCA_PLACEMENT_STRATEGY: 'spread', VCA_AUTOSCALER_ENABLED: 'true' },
    });
    expect(config.server.port).toBe(9090);
    expect(config.placement.strategy).toBe('spread');
    expect(config.autoscaler.enabled).toBe(true);
  });

  it('fills defaults for keys the file leaves out', () => {
    const config = loadConfig({ env: {}, file: yamlFile('placement:\n  strategy: spread\n') });
    expect(config.queue.maxLength).toBe(10_000);
    expect(config.placement.headroom.gpu).toBe(0.9);
  });

  it('is frozen', () => {
    const config = loadConfig({ env: {} });
    expect(Object.isFrozen(config.placement.headroom)).toBe(true);
  });

  it.each([
    ['PORT', 'eighty', 'server.port'],
    ['VCA_STORE', 'postgres', 'store.kind'],
    ['VCA_PLACEMENT_STRATEGY', 'random', 'placement.strategy'],
  ])('stops start-up on a bad %s naming the key path', (name, value, keyPath) => {
    expect(() => loadConfig({ env: { [name]: value } })).toThrow(new RegExp(keyPath.replace('.', '\\.')));
  });

  it('names the key path of a bad value in the YAML file, and unknown keys', () => {
    expect(() => loadConfig({ env: {}, file: yamlFile('placement:\n  headroom:\n    gpu: 1.5\n') })).toThrow(
      /placement\.headroom\.gpu/,
    );
    expect(() => loadConfig({ env: {}, file: yamlFile('queue:\n  maxLenght: 3\n') })).toThrow(ConfigError);
    expect(() => loadConfig({ env: {}, file: yamlFile('queue:\n  defaultPriority: gold\n') })).toThrow(
      /queue\.defaultPriority/,
    );
    expect(() => loadConfig({ env: {}, file: yamlFile('server: [1, 2\n') })).toThrow(/not valid YAML/);
  });

  it('reads Redis Sentinel and Cluster settings from the environment into store connections', () => {
    const sentinel = loadConfig({
      env: {
        VCA_STORE: 'redis',
        VCA_REDIS_MODE: 'sentinel',
        VCA_REDIS_SENTINELS: 'sentinel-a:26379, [fd00::7]:26380',
        VCA_REDIS_SENTINEL_MASTER: 'vca-master',
        VCA_REDIS_PASSWORD: 's3cret',
        VCA_REDIS_SENTINEL_PASSWORD: 'sentinel-s3cret',
      },
    });
    expect(redisConnection(sentinel.store.redis)).toEqual({
      sentinels: [
        { host: 'sentinel-a', port: 26379 },
        { host: 'fd00::7', port: 26380 },
      ],
      masterName: 'vca-master',
      password: 's3cret',
      sentinelPassword: 'sentinel-s3cret',
    });
    const cluster = loadConfig({
      env: { VCA_REDIS_MODE: 'cluster', VCA_REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7000' },
    });
    expect(redisConnection(cluster.store.redis)).toEqual({
      clusterNodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7000 },
      ],
    });
    expect(redisConnection(loadConfig({ env: { VCA_REDIS_URL: 'redis://r:6380/2' } }).store.redis)).toBe(
      'redis://r:6380/2',
    );
  });

  it('stops start-up on an incomplete or malformed Redis Sentinel or Cluster setting', () => {
    expect(() => loadConfig({ env: { VCA_REDIS_MODE: 'sentinel', VCA_REDIS_SENTINELS: 'a:1' } })).toThrow(
      /store\.redis\.sentinelMasterName: mode sentinel needs/,
    );
    expect(() => loadConfig({ env: { VCA_REDIS_MODE: 'sentinel', VCA_REDIS_SENTINEL_MASTER: 'm' } })).toThrow(
      /store\.redis\.sentinels: mode sentinel needs/,
    );
    // A single server takes its password in the URL: a separate one would be ignored, so it is refused.
    expect(() => loadConfig({ env: { VCA_REDIS_PASSWORD: 'p' } })).toThrow(
      /store\.redis\.password: mode single/,
    );
    expect(() => loadConfig({ env: { VCA_REDIS_MODE: 'cluster' } })).toThrow(/store\.redis\.clusterNodes/);
    expect(() =>
      loadConfig({ env: { VCA_REDIS_MODE: 'cluster', VCA_REDIS_CLUSTER_NODES: 'no-port' } }),
    ).toThrow(/store\.redis\.clusterNodes/);
    expect(() => loadConfig({ env: { VCA_REDIS_MODE: 'primary' } })).toThrow(/store\.redis\.mode/);
  });
});

describe('config: catalogs', () => {
  const catalog = loadCatalog(loadConfig({ env: {} }));
  const index = new CatalogIndex(catalog);

  it('has at least 10 titles including Unigine Heaven, each fitting an empty reference GPU at 1080p60', () => {
    expect(catalog.games.size).toBeGreaterThanOrEqual(10);
    expect(catalog.games.has('unigine-heaven')).toBe(true);
    const reference = index.model(catalog.referenceGpu);
    for (const game of catalog.games.values()) {
      const cost = sessionCost({ game, size: parseResolution('1080p'), fps: 60 }, reference)!;
      expect(cost.gpu, game.id).toBeLessThanOrEqual(900_000);
      expect(cost.vramMiB, game.id).toBeLessThanOrEqual(reference.vramMiB * 0.9);
    }
  });

  it('has the required GPU models with the properties the design names', () => {
    for (const name of ['GRID K2', 'Tesla M60', 'T4', 'A10G', 'L4', 'L40S', 'RTX 4080 SUPER', 'H100']) {
      expect(index.findModel(name), name).toBeDefined();
    }
    expect(index.model('GRID K2').gpusPerBoard).toBe(2);
    expect(index.model('RTX 4080 SUPER')).toMatchObject({
      encoderSessionLimit: 8,
      encoderSessionScope: 'system',
    });
    expect(index.model('H100').nvencEngines).toBe(0);
    expect(index.findModel('NVIDIA GeForce RTX 4080 SUPER')?.name).toBe('RTX 4080 SUPER');
    expect(index.findModel('NVIDIA H100 80GB HBM3')?.name).toBe('H100');
    expect(index.findModel('NVIDIA L40S')?.name).toBe('L40S');
  });

  it('rejects a catalog whose reference GPU is missing or whose names repeat', () => {
    const gpus = { referenceGpu: 'X', models: [] as unknown[] };
    expect(() => buildCatalog({ games: [] }, gpus)).toThrow(ConfigError);
    const model = {
      name: 'A',
      renderCapacity: 1,
      vramMiB: 1024,
      nvencEngines: 1,
      encoderPixelRate: 1e9,
      encoderSessionLimit: null,
      encoderSessionScope: 'gpu',
      throttleTemperatureCelsius: 90,
      source: 'test',
    };
    const game = {
      id: 'g',
      title: 'G',
      gpuCostAt1080p60: 0.1,
      vramBaseMiB: 100,
      vramPerMegapixelMiB: 10,
      resolutions: ['1080p'],
      fps: [60],
      source: 'test',
    };
    expect(() => buildCatalog({ games: [game, game] }, { referenceGpu: 'A', models: [model] })).toThrow(
      /duplicate game/,
    );
    expect(() => buildCatalog({ games: [game] }, { referenceGpu: 'A', models: [model, model] })).toThrow(
      /duplicate GPU/,
    );
    expect(() =>
      buildCatalog({ games: [{ ...game, resolutions: ['huge'] }] }, { referenceGpu: 'A', models: [model] }),
    ).toThrow(/games\.0\.resolutions\.0/);
  });
});

describe('cost: session cost vector', () => {
  const index = new CatalogIndex(loadCatalog(loadConfig({ env: {} })));

  it('scales render cost with pixel rate and divides by model capacity', () => {
    const game = index.game('unigine-heaven');
    const l4 = index.model('L4');
    const l40s = index.model('L40S');
    const at1080p60 = sessionCost({ game, size: parseResolution('1080p'), fps: 60 }, l4)!;
    const at2160p60 = sessionCost({ game, size: parseResolution('2160p'), fps: 60 }, l4)!;
    expect(at1080p60.gpu).toBe(Math.ceil(game.gpuCostAt1080p60 * 1e6));
    expect(at2160p60.gpu / at1080p60.gpu).toBeCloseTo(4, 3);
    const onL40s = sessionCost({ game, size: parseResolution('1080p'), fps: 60 }, l40s)!;
    expect(onL40s.gpu).toBe(Math.ceil((game.gpuCostAt1080p60 / l40s.renderCapacity) * 1e6));
  });

  it('charges the encoder by pixel rate, one encoder session, and VRAM by megapixels', () => {
    const game = index.game('unigine-heaven');
    const l4 = index.model('L4');
    const cost = sessionCost({ game, size: parseResolution('1080p'), fps: 120 }, l4)!;
    expect(cost.encoder).toBe(Math.ceil(((1920 * 1080 * 120) / l4.encoderPixelRate) * 1e6));
    expect(cost.encoderSessions).toBe(1);
    expect(cost.vramMiB).toBe(Math.ceil(game.vramBaseMiB + game.vramPerMegapixelMiB * 2.0736));
  });

  it('has no cost on a GPU without NVENC: it cannot host a stream', () => {
    const game = index.game('unigine-heaven');
    expect(
      sessionCost({ game, size: parseResolution('1080p'), fps: 60 }, index.model('H100')),
    ).toBeUndefined();
  });

  it.each(['1080i', '999999x1', 'abc', '', '100x100'])('rejects resolution %j', (text) => {
    expect(() => parseResolution(text)).toThrow(expect.objectContaining({ code: 'VCA_ERR_BAD_RESOLUTION' }));
  });
});
