/**
 * Telemetry benchmark (docs/architecture.md "Performance budgets"): 10,000 nodes x 4 GPUs reporting
 * every 2 s into ONE gateway instance, on the embedded store and on Redis (a real, throw-away
 * redis-server). Everything on 127.0.0.1; the run ends by itself.
 *
 * - The gateway is the production build (bench/gateway-harness.ts) with config/default.yaml (learned
 *   costs on: the learner observes every report), except `telemetry.staleAfterIntervals`, raised so the
 *   nodes stay fresh in the quiet phases: the only difference between phases is then the telemetry load.
 * - Nodes register through the signed contextualize webhook (100 per call) and report with their own
 *   node tokens over real HTTP `PUT /v1/nodes/:id/telemetry`, samples of 4 idle GPUs as gpu-probe sends
 *   them, varying a little from one report to the next (BENCH_SAMPLES).
 * - The load generator is a child process (this file with `--generator`, prebuilt requests on 256
 *   keep-alive sockets, one in flight each): it paces nodes / interval reports per second evenly (every
 *   node once per interval), sending what fell due every millisecond (the probes of a real fleet report
 *   at independent times, not in bursts of ~50 every 10 ms as a coarser pacing sent them), and counts
 *   what it could not send because too many were in flight ("behind").
 * - Phases alternate quiet / load (BENCH_PHASES pairs of BENCH_PHASE_SECONDS each, after a warm-up of
 *   load); in every phase a trickle of session allocations (POST /v1/sessions, then DELETE, one at a
 *   time every BENCH_TRICKLE_MS) measures placement latency (the POST). CPU: utime + stime from
 *   /proc/<pid>/stat of the gateway child and of redis-server over each phase, per second of wall time
 *   (1.0 = one core).
 *
 * Targets: gateway < 0.5 of a core under the full load; placement p50 during load within 10 % of the
 * quiet p50 (placementP50RatioDuringLoad <= 1.1). Writes bench/results/telemetry.{json,md}.
 *
 * Environment: BENCH_NODES (10000), BENCH_GPUS (4), BENCH_INTERVAL_SECONDS (2), BENCH_PHASES (2),
 * BENCH_PHASE_SECONDS (12), BENCH_WARMUP_SECONDS (8), BENCH_TRICKLE_MS (50), BENCH_SCENARIOS
 * ("embedded,redis"), BENCH_SAMPLES ("noisy": each node cycles through 4 reports whose values differ a
 * little, as an idle GPU's readings do; "steady": one identical report), BENCH_CONSOLE_HISTORY ("on":
 * the default configuration; "off": console.historyWithoutViewers false), BENCH_GATEWAY_NODE_FLAGS
 * (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GatewayProcess, type RegisteredNode, registerNodes, repoRoot } from '../kit/gateway-process.js';
import { idleGpus } from '../kit/idle-telemetry.js';
import {
  allocationDeleteHeaders,
  allocationPostHeaders,
  allocationRequestBody,
  machineInfo,
  machineLine,
  percentile,
  processCpuMicros,
  processRssBytes,
  round,
  sessionIdPattern,
  startGateway,
} from './gateway-harness.js';
import { type BenchRedis, startBenchRedis } from './redis-support.js';

const nodeCount = Number(process.env.BENCH_NODES ?? 10_000);
const gpusPerNode = Number(process.env.BENCH_GPUS ?? 4);
const intervalSeconds = Number(process.env.BENCH_INTERVAL_SECONDS ?? 2);
const phasePairs = Number(process.env.BENCH_PHASES ?? 2);
const phaseSeconds = Number(process.env.BENCH_PHASE_SECONDS ?? 12);
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 8);
const trickleMs = Number(process.env.BENCH_TRICKLE_MS ?? 50);
const scenarios = (process.env.BENCH_SCENARIOS ?? 'embedded,redis').split(',').filter(Boolean);
/** 'noisy' (default): every report's values move a little, as real probes' do; 'steady': the same report. */
const samplesMode = process.env.BENCH_SAMPLES === 'steady' ? 'steady' : 'noisy';
/** 'off': console.historyWithoutViewers false (no read of every node for the console's history). */
const consoleHistory = process.env.BENCH_CONSOLE_HISTORY !== 'off';
const nodeFlags = process.env.BENCH_GATEWAY_NODE_FLAGS?.split(' ').filter(Boolean);
/** Sockets of the load generator, one report in flight each: a report due while all wait is behind. */
const generatorSockets = 256;

// ---------------------------------------------------------------------------------------------------
// The load generator (child process).

interface GeneratorStart {
  kind: 'start';
  url: string;
  nodes: Array<{ id: string; token: string }>;
  reportsPerSecond: number;
}
interface GeneratorCounts {
  kind: 'counts';
  sent: number;
  ok: number;
  failed: number;
  behind: number;
  lastError: string;
}

/**
 * The generator writes prebuilt HTTP/1.1 requests on 256 keep-alive sockets, one request in flight per
 * socket (a report due while every socket waits is counted as behind), and reads only the status lines
 * of the answers: a node:http client
 * costs more CPU per request than the gateway's handler, and on a shared 2-core machine it would
 * measure itself.
 */
/** Reports per node the generator cycles through: the same samples (steady) or varying ones (noisy). */
const sampleVariants = samplesMode === 'steady' ? 1 : 4;

/**
 * The report bodies of one node: idle samples as gpu-probe sends them (steady), or, noisy (the
 * default), `sampleVariants` reports whose every value moves as an idle GPU's readings do between
 * samples (0-4 % render, 0-2 % encoder, 250-330 MiB of VRAM, 38-43 °C), drawn from a seeded generator.
 */
function nodeBodies(nodeIndex: number): string[] {
  if (samplesMode === 'steady') return [JSON.stringify({ gpus: idleGpus(gpusPerNode) })];
  let seed = (nodeIndex + 1) * 2654435761;
  const draw = (low: number, high: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return low + (seed % (high - low + 1));
  };
  return Array.from({ length: sampleVariants }, () =>
    JSON.stringify({
      gpus: idleGpus(gpusPerNode).map((gpu) => ({
        ...gpu,
        utilizationGpu: draw(0, 4),
        utilizationEncoder: draw(0, 2),
        memoryUsed: draw(250, 330),
        temperatureGpu: draw(38, 43),
      })),
    }),
  );
}

function runGenerator(): void {
  let counts: GeneratorCounts = { kind: 'counts', sent: 0, ok: 0, failed: 0, behind: 0, lastError: '' };
  let timer: NodeJS.Timeout | undefined;
  let connections: Array<{ socket: net.Socket; inFlight: number }> = [];
  /** Connections with no request in flight: one request at a time each (no pipelining). */
  const idle: Array<{ socket: net.Socket; inFlight: number }> = [];
  let inFlight = 0;
  const statusLine = /HTTP\/1\.1 (\d{3})/g;
  const open = (url: URL) =>
    Array.from({ length: generatorSockets }, () => {
      const connection = { socket: net.connect(Number(url.port), url.hostname), inFlight: 0 };
      connection.socket.setNoDelay(true);
      let tail = '';
      connection.socket.on('data', (chunk: Buffer) => {
        // Status lines only; a line cut between two chunks is completed by the tail of the last one.
        const text = tail + chunk.toString('latin1');
        statusLine.lastIndex = 0;
        let end = 0;
        for (let match = statusLine.exec(text); match; match = statusLine.exec(text)) {
          end = statusLine.lastIndex;
          connection.inFlight -= 1;
          inFlight -= 1;
          if (connection.inFlight === 0) idle.push(connection);
          if (match[1] === '200') counts.ok += 1;
          else {
            counts.failed += 1;
            counts.lastError = text.slice(match.index, match.index + 300);
          }
        }
        tail = text.slice(Math.max(end, text.length - 16));
      });
      connection.socket.on('error', (error) => {
        counts.lastError = error.message;
      });
      return connection;
    });
  process.on('message', (message: GeneratorStart | { kind: 'stop' }) => {
    if (message.kind === 'start') {
      const url = new URL(message.url);
      // requests[variant][node]: every node once per interval, its next variant each time round.
      const bodies = message.nodes.map((_, index) => nodeBodies(index));
      const requests = Array.from({ length: sampleVariants }, (_, variant) =>
        message.nodes.map((node, index) => {
          const body = bodies[index]![variant % bodies[index]!.length]!;
          return Buffer.from(
            `PUT /v1/nodes/${encodeURIComponent(node.id)}/telemetry HTTP/1.1\r\nhost: ${url.host}\r\n` +
              `authorization: Bearer ${node.token}\r\ncontent-type: application/json\r\n` +
              `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
            'latin1',
          );
        }),
      );
      // Fresh sockets for every load phase: the gateway closes keep-alive sockets idle for long.
      for (const connection of connections) connection.socket.destroy();
      connections = open(url);
      idle.length = 0;
      idle.push(...connections);
      inFlight = 0;
      const started = performance.now();
      let due = 0;
      let next = 0;
      let variant = 0;
      counts = { kind: 'counts', sent: 0, ok: 0, failed: 0, behind: 0, lastError: '' };
      timer = setInterval(() => {
        const target = Math.floor(((performance.now() - started) / 1000) * message.reportsPerSecond);
        for (; due < target; due++) {
          const round = requests[variant]!;
          const request = round[next]!;
          next += 1;
          if (next === round.length) {
            next = 0;
            variant = (variant + 1) % requests.length;
          }
          const connection = idle.pop();
          if (!connection) {
            counts.behind += 1;
            continue;
          }
          connection.inFlight += 1;
          inFlight += 1;
          counts.sent += 1;
          connection.socket.write(request);
        }
      }, 1);
    } else {
      if (timer) clearInterval(timer);
      timer = undefined;
      // Let the requests in flight finish, then answer.
      const waitStart = Date.now();
      const done = () => {
        if (inFlight > 0 && Date.now() - waitStart < 10_000) setTimeout(done, 20);
        else process.send!(counts);
      };
      done();
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------------
// The benchmark (parent process).

interface PhaseResult {
  load: boolean;
  seconds: number;
  gatewayCoreShare: number;
  redisCoreShare?: number;
  placements: number;
  placementFailures: number;
  placementP50Ms: number;
  placementP99Ms: number;
  reports?: { sent: number; ok: number; failed: number; behind: number; perSecond: number };
}

interface ScenarioResult {
  store: 'embedded' | 'redis';
  gatewayCoreShare: number;
  gatewayCoreShareQuiet: number;
  redisCoreShare?: number;
  redisCoreShareQuiet?: number;
  placementP50MsQuiet: number;
  placementP50MsDuringLoad: number;
  placementP50RatioDuringLoad: number;
  reportsPerSecondTarget: number;
  reportsPerSecondAchieved: number;
  /** Achieved at least 95 % of the target report rate with no errors. */
  keptUp: boolean;
  /** gatewayCoreShare scaled to the full target rate when the gateway fell behind (CPU grows with reports). */
  gatewayCoreShareAtTargetRate: number;
  reportErrors: number;
  reportsBehind: number;
  placementFailures: number;
  gatewayRssMiB: number;
  phases: PhaseResult[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 2 });

function request(
  url: URL,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      { agent: keepAlive, host: url.hostname, port: url.port, method, path, headers },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      },
    );
    outgoing.setTimeout(10_000, () => outgoing.destroy(new Error('timeout')));
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** One allocation at a time every trickleMs until `until`: the POST's latency in ms, DELETE after. */
async function trickle(url: URL, until: number): Promise<{ latencies: number[]; failures: number }> {
  const latencies: number[] = [];
  let failures = 0;
  const postHeaders = {
    ...allocationPostHeaders,
    'content-length': String(Buffer.byteLength(allocationRequestBody)),
  };
  while (Date.now() < until) {
    const next = Date.now() + trickleMs;
    try {
      const started = performance.now();
      const created = await request(url, 'POST', '/v1/sessions', postHeaders, allocationRequestBody);
      const elapsed = performance.now() - started;
      const id = created.status === 201 ? sessionIdPattern.exec(created.text)?.[1] : undefined;
      if (!id) failures += 1;
      else {
        latencies.push(elapsed);
        const ended = await request(url, 'DELETE', `/v1/sessions/${id}`, allocationDeleteHeaders);
        if (ended.status !== 200) failures += 1;
      }
    } catch {
      failures += 1;
    }
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
  }
  return { latencies: latencies.sort((a, b) => a - b), failures };
}

/**
 * Registers the fleet 100 nodes per webhook; a batch that fails (a store timeout while Redis runs a
 * long script) is sent again, up to 5 times.
 */
async function registerFleet(url: string): Promise<RegisteredNode[]> {
  const all = Array.from({ length: nodeCount }, (_, i) => ({
    id: `tel-${String(i).padStart(5, '0')}`,
    model: 'L4',
    gpuCount: gpusPerNode,
  }));
  const registered: RegisteredNode[] = [];
  for (let start = 0; start < all.length; start += 100) {
    for (let attempt = 1; ; attempt++) {
      try {
        registered.push(...(await registerNodes(url, all.slice(start, start + 100))));
        break;
      } catch (error) {
        if (attempt >= 5) throw error;
        console.log(`  registration retry ${attempt}: ${(error as Error).message.slice(0, 160)}`);
        await sleep(1000);
      }
    }
  }
  return registered;
}

function startGenerator(): ChildProcess {
  const child = fork(fileURLToPath(import.meta.url), ['--generator'], {
    cwd: repoRoot,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  process.on('exit', () => child.kill('SIGKILL'));
  return child;
}

function stopGenerator(child: ChildProcess): Promise<GeneratorCounts> {
  return new Promise((resolve) => {
    child.once('message', (message) => resolve(message as GeneratorCounts));
    child.send({ kind: 'stop' });
  });
}

async function runScenario(
  store: 'embedded' | 'redis',
  redis: BenchRedis | undefined,
): Promise<ScenarioResult> {
  const env: Record<string, string> =
    store === 'redis' && redis
      ? { VCA_STORE: 'redis', VCA_REDIS_URL: redis.url, VCA_REDIS_KEY_PREFIX: 'vca-telemetry-bench' }
      : {};
  if (redis) await redis.client.flushall();
  const gateway: GatewayProcess = await startGateway({
    env,
    raiseFileLimit: 65_536,
    // Every node reports from 127.0.0.1 here; in production each has its own address.
    server: {
      requestsPerSecondPerAddress: 1_000_000,
      requestBurst: 1_000_000,
      maxConnectionsPerAddress: 10_000,
    },
    settings: {
      telemetry: { staleAfterIntervals: 100 },
      ...(consoleHistory ? {} : { console: { historyWithoutViewers: false } }),
    },
    ...(nodeFlags ? { nodeFlags } : {}),
  });
  const generator = startGenerator();
  try {
    const url = new URL(gateway.url);
    const nodes = await registerFleet(gateway.url);
    const reportsPerSecond = nodeCount / intervalSeconds;
    const start: GeneratorStart = {
      kind: 'start',
      url: gateway.url,
      nodes: nodes.map(({ id, token }) => ({ id, token })),
      reportsPerSecond,
    };
    // Warm-up: every node reports (ready), the gateway's code paths get hot.
    generator.send(start);
    await sleep(warmupSeconds * 1000);
    await stopGenerator(generator);
    await trickle(url, Date.now() + 2000);
    const phases: PhaseResult[] = [];
    for (let pair = 0; pair < phasePairs; pair++) {
      // Alternate which phase comes first, so drift hits both alike.
      const order = pair % 2 === 0 ? [false, true] : [true, false];
      for (const load of order) {
        if (load) generator.send(start);
        // Let the rate settle before measuring.
        await sleep(load ? 1000 : 500);
        const cpu0 = processCpuMicros(gateway.pid);
        const redis0 = redis ? processCpuMicros(redis.pid) : 0;
        const t0 = performance.now();
        const measured = await trickle(url, Date.now() + phaseSeconds * 1000);
        const seconds = (performance.now() - t0) / 1000;
        const gatewayCoreShare = round((processCpuMicros(gateway.pid) - cpu0) / 1e6 / seconds, 3);
        const redisCoreShare = redis
          ? round((processCpuMicros(redis.pid) - redis0) / 1e6 / seconds, 3)
          : undefined;
        const phase: PhaseResult = {
          load,
          seconds: round(seconds, 2),
          gatewayCoreShare,
          ...(redisCoreShare !== undefined ? { redisCoreShare } : {}),
          placements: measured.latencies.length,
          placementFailures: measured.failures,
          placementP50Ms: round(percentile(measured.latencies, 50), 3),
          placementP99Ms: round(percentile(measured.latencies, 99), 3),
        };
        if (load) {
          const counts = await stopGenerator(generator);
          const wall = seconds + 1;
          phase.reports = {
            sent: counts.sent,
            ok: counts.ok,
            failed: counts.failed,
            behind: counts.behind,
            perSecond: round(counts.ok / wall, 0),
          };
          if (counts.lastError) console.log(`  generator: last error ${counts.lastError}`);
          if (process.env.BENCH_DEBUG) console.log(JSON.stringify(counts));
        }
        phases.push(phase);
        console.log(
          `${store} ${load ? 'load ' : 'quiet'}: gateway ${gatewayCoreShare} core${redisCoreShare !== undefined ? `, redis ${redisCoreShare} core` : ''}, placement p50 ${phase.placementP50Ms} ms p99 ${phase.placementP99Ms} ms (${phase.placements} ok, ${phase.placementFailures} failed)${phase.reports ? `, reports ${phase.reports.perSecond}/s (${phase.reports.failed} failed, ${phase.reports.behind} behind)` : ''}`,
        );
      }
    }
    const rss = processRssBytes(gateway.pid) / 2 ** 20;
    const loadPhases = phases.filter((phase) => phase.load);
    const quietPhases = phases.filter((phase) => !phase.load);
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const p50Load = mean(loadPhases.map((phase) => phase.placementP50Ms));
    const p50Quiet = mean(quietPhases.map((phase) => phase.placementP50Ms));
    const reportsOk = loadPhases.reduce((sum, phase) => sum + (phase.reports?.ok ?? 0), 0);
    const loadSeconds = loadPhases.reduce((sum, phase) => sum + phase.seconds + 1, 0);
    const gatewayLoadShare = mean(loadPhases.map((phase) => phase.gatewayCoreShare));
    return {
      store,
      gatewayCoreShare: round(gatewayLoadShare, 3),
      gatewayCoreShareQuiet: round(mean(quietPhases.map((phase) => phase.gatewayCoreShare)), 3),
      ...(redis
        ? {
            redisCoreShare: round(mean(loadPhases.map((phase) => phase.redisCoreShare ?? 0)), 3),
            redisCoreShareQuiet: round(mean(quietPhases.map((phase) => phase.redisCoreShare ?? 0)), 3),
          }
        : {}),
      placementP50MsQuiet: round(p50Quiet, 3),
      placementP50MsDuringLoad: round(p50Load, 3),
      placementP50RatioDuringLoad: round(p50Load / p50Quiet, 3),
      reportsPerSecondTarget: reportsPerSecond,
      reportsPerSecondAchieved: round(reportsOk / loadSeconds, 0),
      keptUp:
        reportsOk / loadSeconds >= 0.95 * reportsPerSecond &&
        loadPhases.every((phase) => (phase.reports?.failed ?? 0) === 0),
      gatewayCoreShareAtTargetRate: round(
        gatewayLoadShare * Math.max(1, reportsPerSecond / Math.max(1, reportsOk / loadSeconds)),
        3,
      ),
      reportErrors: loadPhases.reduce((sum, phase) => sum + (phase.reports?.failed ?? 0), 0),
      reportsBehind: loadPhases.reduce((sum, phase) => sum + (phase.reports?.behind ?? 0), 0),
      placementFailures: phases.reduce((sum, phase) => sum + phase.placementFailures, 0),
      gatewayRssMiB: round(rss, 0),
      phases,
    };
  } finally {
    generator.kill('SIGKILL');
    await gateway.stop();
  }
}

interface TelemetryReport {
  nodes: number;
  gpusPerNode: number;
  intervalSeconds: number;
  embedded?: ScenarioResult;
  redis?: ScenarioResult;
  date: string;
  machine: ReturnType<typeof machineInfo>;
  settings: {
    phasePairs: number;
    phaseSeconds: number;
    warmupSeconds: number;
    trickleMs: number;
    samples: string;
    consoleHistoryWithoutViewers: boolean;
  };
}

function markdown(report: TelemetryReport): string {
  const rows = (['embedded', 'redis'] as const)
    .filter((store) => report[store])
    .map((store) => {
      const s = report[store] as ScenarioResult;
      return `| ${store} | ${s.reportsPerSecondAchieved} / ${s.reportsPerSecondTarget} | ${s.reportErrors} / ${s.reportsBehind} | ${s.gatewayCoreShare} (quiet ${s.gatewayCoreShareQuiet}) | ${s.redisCoreShare ?? '—'}${s.redisCoreShareQuiet !== undefined ? ` (quiet ${s.redisCoreShareQuiet})` : ''} | ${s.placementP50MsQuiet} / ${s.placementP50MsDuringLoad} = ${s.placementP50RatioDuringLoad} | ${s.placementFailures} | ${s.gatewayRssMiB} |`;
    });
  return `# Telemetry benchmark

- Date: ${report.date}
- Machine: ${report.machine.cpuModel}, ${report.machine.cores} cores, ${report.machine.ram}, Node ${report.machine.node}, ${report.machine.os} (the gateway, Redis, the load generator and other work share these cores)
- Load: ${report.nodes} nodes x ${report.gpusPerNode} GPUs (L4), each reporting every ${report.intervalSeconds} s over HTTP PUT /v1/nodes/:id/telemetry with its node token (a child process: prebuilt requests on 256 keep-alive sockets, one in flight each, sent as they fall due, checked every millisecond), ${report.settings.samples === 'steady' ? 'the same idle samples every time' : 'idle samples that vary a little from one report to the next (0-4 % render, 0-2 % encoder, 250-330 MiB, 38-43 °C; 4 reports per node in turn)'}; ${report.settings.phasePairs} quiet/load phase pairs of ${report.settings.phaseSeconds} s in alternating order after ${report.settings.warmupSeconds} s of warm-up; a trickle of one allocation (POST, then DELETE) every ${report.settings.trickleMs} ms in every phase; config/default.yaml (learned costs on) the per-address request limits raised (every node reports from 127.0.0.1 here), telemetry.staleAfterIntervals at its maximum, 100 (200 s), so nodes stay fresh in quiet phases${report.settings.consoleHistoryWithoutViewers ? '' : '; console.historyWithoutViewers false (no console history while no console is open)'}
- CPU: /proc/<pid>/stat utime + stime over a phase per second of wall time (1.0 = one core)

| store | reports/s achieved / target | report errors / behind | gateway core (load) | Redis core (load) | placement p50 ms quiet / load = ratio | placement failures | gateway RSS MiB |
|---|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}

Targets: the gateway keeps up (>= 95 % of the report rate, no errors) with < 0.5 of a core; placement p50 during load <= 1.1x quiet.
${(['embedded', 'redis'] as const)
  .filter((store) => report[store])
  .map((store) => {
    const s = report[store] as ScenarioResult;
    return `- ${store}: gateway ${s.gatewayCoreShare} core at ${s.reportsPerSecondAchieved} reports/s (${s.gatewayCoreShareAtTargetRate} scaled to ${s.reportsPerSecondTarget}/s), kept up: ${s.keptUp ? 'yes' : 'no'} -> **${s.keptUp && s.gatewayCoreShare < 0.5 ? 'PASS' : 'FAIL'}**; placement p50 ratio ${s.placementP50RatioDuringLoad} -> **${s.placementP50RatioDuringLoad <= 1.1 ? 'PASS' : 'FAIL'}** (${s.reportErrors} report errors, ${s.reportsBehind} reports behind)`;
  })
  .join('\n')}
`;
}

async function main(): Promise<void> {
  console.log(`bench:telemetry on ${machineLine()}`);
  console.log(
    `${nodeCount} nodes x ${gpusPerNode} GPUs every ${intervalSeconds} s = ${nodeCount / intervalSeconds} reports/s`,
  );
  const redis = scenarios.includes('redis') ? await startBenchRedis() : undefined;
  const results: Record<string, ScenarioResult> = {};
  try {
    for (const store of scenarios as Array<'embedded' | 'redis'>) {
      results[store] = await runScenario(store, store === 'redis' ? redis : undefined);
    }
  } finally {
    await redis?.stop();
  }
  // The fields the issue names first, then the rest of the scenario.
  const pick = (s: ScenarioResult | undefined) => {
    if (!s) return undefined;
    const { gatewayCoreShare, redisCoreShare, placementP50RatioDuringLoad, ...rest } = s;
    return {
      gatewayCoreShare,
      ...(redisCoreShare !== undefined ? { redisCoreShare } : {}),
      placementP50RatioDuringLoad,
      ...rest,
    };
  };
  const report = {
    nodes: nodeCount,
    gpusPerNode,
    intervalSeconds,
    embedded: pick(results.embedded),
    redis: pick(results.redis),
    targets: { gatewayCoreShareMax: 0.5, placementP50RatioDuringLoadMax: 1.1 },
    date: new Date().toISOString(),
    machine: machineInfo(),
    settings: {
      phasePairs,
      phaseSeconds,
      warmupSeconds,
      trickleMs,
      generatorSockets,
      samples: samplesMode,
      consoleHistoryWithoutViewers: consoleHistory,
      redis: redis ? 'redis-server (kit/redis-server.ts)' : undefined,
    },
  };
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'telemetry.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(dir, 'telemetry.md'), markdown(report));
  console.log('wrote bench/results/telemetry.{json,md}');
}

if (process.argv.includes('--generator')) {
  runGenerator();
} else {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
