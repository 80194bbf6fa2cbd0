/**
 * `gpu-probe`: the rendering-node agent's command line. Samples the node's GPUs (or simulates one),
 * pushes telemetry to the VCA, serves its own /metrics and the gamers' ping target. Exit codes: 0 done, 1 no usable GPU or
 * nvidia-smi (or another runtime failure), 2 bad arguments.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { defaultPingPort } from '../../src/wire/ping-target.js';
import { DcgmSource } from './dcgm-source.js';
import { findExecutable } from './find-executable.js';
import { GmondSource, parseGmondAddress } from './gmond-source.js';
import type { SampleSource } from './sample-source.js';
import { hashString } from './seeded-random.js';
import type { SimulatedGpu } from './simulated-gpu.js';
import { SmiSampler } from './smi-sampler.js';
import { parseSourceOption, type SourceOption, SourceOptionError } from './source-option.js';
import { type TelemetrySample, toTelemetryDocument } from './telemetry-sample.js';

const usage = `usage: gpu-probe --vca URL --node-id ID --token TOKEN [options]
       gpu-probe --once [--source KIND=ADDRESS | --simulate MODEL]

  --vca URL            the VCA gateway (env VCA_URL)
  --node-id ID         this node's id as registered (env VCA_NODE_ID)
  --token TOKEN        this node's token from registration (env VCA_NODE_TOKEN)
  --interval-ms N      sample and push interval, default 2000
  --source KIND=ADDR   where samples come from: nvidia-smi[=PATH] (default), dcgm=URL (a DCGM
                       exporter's /metrics page, e.g. http://127.0.0.1:9400/metrics), gmond=ADDRESS
  --nvidia-smi PATH    nvidia-smi to run, default: nvidia-smi on PATH (same as --source nvidia-smi=PATH)
  --gmond-host NAME    with --source gmond=HOST:PORT: this node's HOST in gmond's dump, default
                       the machine's hostname (a dump of a single host is used as is)
  --simulate MODEL     model a GPU of this config/gpus.yaml model instead (no GPU needed)
  --gpus N             simulated GPUs, default 1
  --seed N             simulation noise seed, default: from the node id
  --config-dir DIR     where games.yaml and gpus.yaml are, default the project's config/
  --once               print one telemetry document (the JSON that would be pushed) and exit
  --metrics-port N     port of /metrics, default 9835 (0: any free port)
  --metrics-host HOST  address /metrics listens on, default all
  --ping-port N        port of GET /ping, the gamers' latency target, default 9836 (0: any free
                       port, -1: off); register the node with label vca.ping-port if not the default
  --ping-host HOST     address /ping listens on, default all
  --log-level LEVEL    pino level for the logs on stderr, default info
  --help               this text`;

class UsageError extends Error {}

const exitCodes = { ok: 0, failure: 1, usage: 2 } as const;

interface CliOptions {
  vcaUrl: string | undefined;
  nodeId: string | undefined;
  token: string | undefined;
  intervalMs: number;
  nvidiaSmi: string;
  source: SourceOption;
  gmondHost: string | undefined;
  simulate: string | undefined;
  gpus: number;
  seed: number | undefined;
  configDir: string | undefined;
  once: boolean;
  metricsPort: number;
  metricsHost: string | undefined;
  pingPort: number | null;
  pingHost: string | undefined;
  logLevel: string;
}

function integerOption(
  name: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${text}"`);
  return value;
}

/** `--ping-port`: -1 turns the ping target off. */
function pingPortOption(text: string | undefined): number | null {
  const port = integerOption('ping-port', text, defaultPingPort, -1, 65_535);
  return port === -1 ? null : port;
}

/** `--source KIND=ADDRESS`; without it nvidia-smi (`--nvidia-smi PATH` is its older spelling). */
function sourceOption(
  text: string | undefined,
  nvidiaSmi: string | undefined,
  simulate: string | undefined,
): SourceOption {
  if (text === undefined) return { kind: 'nvidia-smi', address: nvidiaSmi ?? null };
  if (nvidiaSmi !== undefined) throw new UsageError('give --source or --nvidia-smi, not both');
  if (simulate !== undefined) throw new UsageError('give --source or --simulate, not both');
  try {
    return parseSourceOption(text);
  } catch (error) {
    if (error instanceof SourceOptionError) throw new UsageError(error.message);
    throw error;
  }
}

function readOptions(argv: string[], env: NodeJS.ProcessEnv): CliOptions | 'help' {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values } = parsed;
  if (values.help) return 'help';
  const options: CliOptions = {
    vcaUrl: values.vca ?? env.VCA_URL,
    nodeId: values['node-id'] ?? env.VCA_NODE_ID,
    token: values.token ?? env.VCA_NODE_TOKEN,
    intervalMs: integerOption('interval-ms', values['interval-ms'], 2000, 50, 3_600_000),
    nvidiaSmi: values['nvidia-smi'] ?? 'nvidia-smi',
    source: sourceOption(values.source, values['nvidia-smi'], values.simulate),
    gmondHost: values['gmond-host'],
    simulate: values.simulate,
    gpus: integerOption('gpus', values.gpus, 1, 1, 64),
    seed: values.seed === undefined ? undefined : integerOption('seed', values.seed, 0, 0, 2 ** 32 - 1),
    configDir: values['config-dir'],
    once: values.once ?? false,
    metricsPort: integerOption('metrics-port', values['metrics-port'], 9835, 0, 65_535),
    metricsHost: values['metrics-host'],
    pingPort: pingPortOption(values['ping-port']),
    pingHost: values['ping-host'],
    logLevel: values['log-level'] ?? 'info',
  };
  if (options.source.kind === 'nvidia-smi' && options.source.address !== null)
    options.nvidiaSmi = options.source.address;
  if (!pino.levels.values[options.logLevel] && options.logLevel !== 'silent')
    throw new UsageError(`--log-level must be one of ${Object.keys(pino.levels.values).join(', ')}, silent`);
  if (options.gpus !== 1 && !options.simulate) throw new UsageError('--gpus only applies with --simulate');
  if (options.gmondHost !== undefined && options.source.kind !== 'gmond')
    throw new UsageError('--gmond-host only applies with --source gmond=HOST:PORT');
  if (!options.once) {
    const missing = [
      ['--vca', 'VCA_URL', options.vcaUrl],
      ['--node-id', 'VCA_NODE_ID', options.nodeId],
      ['--token', 'VCA_NODE_TOKEN', options.token],
    ].filter(([, , value]) => !value);
    if (missing.length > 0)
      throw new UsageError(
        `missing ${missing.map(([flag, variable]) => `${flag} (or ${variable})`).join(', ')}`,
      );
    let url: URL;
    try {
      url = new URL(options.vcaUrl!);
    } catch {
      throw new UsageError(`--vca must be an http(s) URL, got "${options.vcaUrl}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UsageError(`--vca must be an http(s) URL, got "${options.vcaUrl}"`);
  }
  return options;
}

function parseCli(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      vca: { type: 'string' },
      'node-id': { type: 'string' },
      token: { type: 'string' },
      'interval-ms': { type: 'string' },
      'nvidia-smi': { type: 'string' },
      source: { type: 'string' },
      'gmond-host': { type: 'string' },
      simulate: { type: 'string' },
      gpus: { type: 'string' },
      seed: { type: 'string' },
      'config-dir': { type: 'string' },
      once: { type: 'boolean' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      'ping-port': { type: 'string' },
      'ping-host': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/**
 * Builds the simulated GPU, or throws a UsageError naming the known models. The catalog code is
 * imported only here: a real node's probe need not load YAML and schemas at start.
 */
async function simulatedSource(options: CliOptions): Promise<SimulatedGpu> {
  const [{ defaultConfigDir, loadCatalog }, { CatalogIndex }, { SimulatedGpu }] = await Promise.all([
    import('../../src/config/index.js'),
    import('../../src/cost/index.js'),
    import('./simulated-gpu.js'),
  ]);
  const catalog = new CatalogIndex(
    loadCatalog(
      { catalog: { gamesFile: 'games.yaml', gpusFile: 'gpus.yaml' } },
      options.configDir ?? defaultConfigDir,
    ),
  );
  const model = catalog.findModel(options.simulate!);
  if (!model) {
    throw new UsageError(
      `--simulate: unknown GPU model "${options.simulate}"; known: ${[...catalog.catalog.gpuModels.keys()].join(', ')}`,
    );
  }
  return new SimulatedGpu({
    model,
    catalog,
    gpuCount: options.gpus,
    intervalMs: options.intervalMs,
    seed: options.seed ?? hashString(options.nodeId ?? 'gpu-probe'),
  });
}

/** The nvidia-smi to run, or a clear reason there is none. */
function resolveNvidiaSmi(command: string): string {
  const found = findExecutable(command);
  if (!found) {
    throw new Error(
      command.includes('/')
        ? `nvidia-smi not found or not executable at "${command}"`
        : 'nvidia-smi not found on PATH: this machine has no NVIDIA driver. Install it, pass --nvidia-smi PATH, or use --simulate MODEL',
    );
  }
  return found;
}

function fail(message: string, code: number): number {
  console.error(`gpu-probe: ${message}`);
  if (code === exitCodes.usage) console.error(usage);
  return code;
}

async function runOnce(options: CliOptions, logger: pino.Logger): Promise<number> {
  if (options.simulate) {
    console.log(JSON.stringify(toTelemetryDocument((await simulatedSource(options)).sample())));
    return exitCodes.ok;
  }
  if (options.source.kind === 'dcgm') {
    // One scrape: a failure is reported at once instead of waiting for a sample that cannot come.
    const dcgm = new DcgmSource({ url: options.source.address!, intervalMs: options.intervalMs, logger });
    console.log(JSON.stringify(toTelemetryDocument(await dcgm.scrape())));
    return exitCodes.ok;
  }
  if (options.source.kind === 'gmond') {
    // One read: a problem (no gmond, no such host, stale metrics) is reported at once.
    console.log(JSON.stringify(toTelemetryDocument(await gmondSource(options, logger).sampleOnce())));
    return exitCodes.ok;
  }
  if (options.source.kind !== 'nvidia-smi')
    throw new UsageError(`--source ${options.source.kind} is not built yet`);
  const sampler = new SmiSampler({
    command: resolveNvidiaSmi(options.nvidiaSmi),
    intervalMs: options.intervalMs,
    logger,
  });
  const waitMs = Math.max(10_000, 5 * options.intervalMs);
  try {
    const sample = await new Promise<TelemetrySample>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nvidia-smi gave no sample within ${waitMs} ms`)),
        waitMs,
      );
      sampler.start({
        sample: (first) => {
          clearTimeout(timer);
          resolve(first);
        },
        fatal: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
    console.log(JSON.stringify(toTelemetryDocument(sample)));
    return exitCodes.ok;
  } finally {
    await sampler.stop();
  }
}

/** `--source gmond=HOST:PORT`: Ganglia's gmond, this node's HOST picked by --gmond-host or the hostname. */
function gmondSource(options: CliOptions, logger: pino.Logger): GmondSource {
  let address: ReturnType<typeof parseGmondAddress>;
  try {
    address = parseGmondAddress(options.source.address!);
  } catch (error) {
    throw new UsageError(`--source gmond=: ${(error as Error).message}`);
  }
  return new GmondSource({
    address,
    hostName: options.gmondHost ?? hostname(),
    intervalMs: options.intervalMs,
    logger,
  });
}

/** The `--source` that reads real GPUs; every kind implements `SampleSource`. */
function measuredSource(options: CliOptions, logger: pino.Logger): SampleSource {
  const { kind, address } = options.source;
  switch (kind) {
    case 'nvidia-smi':
      return new SmiSampler({
        command: resolveNvidiaSmi(options.nvidiaSmi),
        intervalMs: options.intervalMs,
        logger: logger.child({ component: 'nvidia-smi' }),
      });
    case 'dcgm':
      return new DcgmSource({
        url: address!,
        intervalMs: options.intervalMs,
        logger: logger.child({ component: 'dcgm' }),
      });
    case 'gmond':
      return gmondSource(options, logger.child({ component: 'gmond' }));
    default:
      throw new UsageError(`--source ${kind} is not built yet`);
  }
}

async function runDaemon(options: CliOptions, logger: pino.Logger): Promise<number> {
  // Loaded here, not at the top: `--once` needs neither prom-client nor the HTTP side.
  const [{ Probe }, { ProbeMetrics }, { TelemetryPusher }] = await Promise.all([
    import('./probe.js'),
    import('./probe-metrics.js'),
    import('./telemetry-pusher.js'),
  ]);
  const simulated = options.simulate ? await simulatedSource(options) : null;
  const source: SampleSource = simulated ?? measuredSource(options, logger);
  // Same window as the gateway's default (3 report intervals): past it a sample is no longer the truth.
  const staleAfterMs = 3 * options.intervalMs;
  const metrics = new ProbeMetrics(Date.now, staleAfterMs);
  const pusher = new TelemetryPusher({
    vcaUrl: options.vcaUrl!,
    nodeId: options.nodeId!,
    token: options.token!,
    logger: logger.child({ component: 'push' }),
    requestTimeoutMs: Math.max(1000, Math.min(10_000, 2 * options.intervalMs)),
    maxSampleAgeMs: staleAfterMs,
    onOutcome(outcome, detail) {
      metrics.recordPush(outcome);
      if (outcome !== 'accepted' || !simulated) return;
      simulated.learnFromAnswer(detail.body);
    },
  });
  const probe = new Probe({
    source,
    pusher,
    metrics,
    logger,
    intervalMs: options.intervalMs,
    staleAfterMs,
    metricsPort: options.metricsPort,
    metricsHost: options.metricsHost,
    pingPort: options.pingPort,
    ...(options.pingHost === undefined ? {} : { pingHost: options.pingHost }),
    inventory: !simulated,
  });

  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const { metricsPort, pingPort } = await probe.start();
  logger.info(
    {
      vca: options.vcaUrl,
      intervalMs: options.intervalMs,
      simulate: options.simulate ?? null,
      metricsPort,
      pingPort,
    },
    'gpu-probe started',
  );
  try {
    const signal = await Promise.race([stopSignal, probe.failure]);
    logger.info({ signal }, 'stopping');
    return exitCodes.ok;
  } catch (error) {
    console.error(`gpu-probe: ${(error as Error).message}`);
    return exitCodes.failure;
  } finally {
    await probe.stop();
  }
}

async function main(argv: string[]): Promise<number> {
  let options: CliOptions | 'help';
  try {
    options = readOptions(argv, process.env);
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message, exitCodes.usage);
    throw error;
  }
  if (options === 'help') {
    console.log(usage);
    return exitCodes.ok;
  }
  const logger = pino(
    { level: options.logLevel, base: { node: options.nodeId ?? null } },
    // Logs go to stderr (stdout is the --once document); synchronous so nothing is lost on exit.
    pino.destination({ dest: 2, sync: true }),
  );
  try {
    return options.once ? await runOnce(options, logger) : await runDaemon(options, logger);
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message, exitCodes.usage);
    return fail((error as Error).message, exitCodes.failure);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('gpu-probe: unexpected failure', error);
    process.exit(exitCodes.failure);
  },
);
