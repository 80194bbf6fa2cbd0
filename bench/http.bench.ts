/**
 * HTTP allocate+release benchmark (docs/architecture.md "Performance budgets"): server CPU per
 * allocation of the real gateway against server CPU per request of a bare uWebSockets.js JSON
 * endpoint, both driven by autocannon from this process in the same run, each server in its own child
 * process.
 *
 * - baseline: bench/bare-server.ts, `POST /v1/sessions` -> 201 with a JSON body of the gateway's size.
 * - floor: the same bare server driven by the gateway's allocate+release loop (its DELETE answers 200
 *   with the gateway's release body): what an allocation costs a server that does no work of its own.
 *   Its cpuRatio (floor CPU per allocation / baseline CPU per request) is the lowest any gateway can
 *   score, since one allocation is two requests.
 * - gateway: src/main.ts (embedded store) with nodes registered through the signed contextualize
 *   webhook and telemetry PUT for every node every 2 s throughout; each autocannon connection loops
 *   POST /v1/sessions (720p30 light title, wait:false) then DELETE /v1/sessions/<id>. One allocation
 *   is one POST+DELETE pair.
 *
 * Server CPU is utime+stime of the child (all its threads) from /proc/<pid>/stat, read right before
 * and after each measured window. Targets are measured in alternating rounds (baseline, floor, gateway
 * in odd rounds, the reverse in even ones) so drift on a shared machine hits all; sums are reported.
 * Latency percentiles come from every response's own timing (autocannon's histogram is whole-ms).
 *
 * Environment: BENCH_CONNECTIONS (32), BENCH_PIPELINING (1), BENCH_DURATION seconds per round and
 * target (10), BENCH_ROUNDS (2), BENCH_WARMUP seconds (3), BENCH_NODES (50),
 * BENCH_CPU_PROF=<dir> (gateway runs with --cpu-prof into <dir>; numbers are then not comparable,
 * nothing is written), BENCH_GATEWAY_NODE_FLAGS (extra node flags for the gateway child).
 * Writes bench/results/http.{json,md}.
 */
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { stopChild } from '../kit/child-processes.js';
import { freePort, host } from '../kit/free-port.js';
import { type GatewayProcess, registerNodes, repoRoot } from '../kit/gateway-process.js';
import { withTimeout } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';
import {
  allocateReleaseRequests,
  allocationDeleteHeaders,
  allocationPostHeaders,
  allocationRequestBody,
  benchNodes,
  clockTicksPerSecond,
  machineInfo,
  machineLine,
  newAllocationCounters,
  percentile,
  processCpuMicros,
  round,
  sessionIdPattern,
  spawnTracked,
  startGateway,
  startTelemetryLoop,
  type TelemetryLoop,
} from './gateway-harness.js';

const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const pipelining = Number(process.env.BENCH_PIPELINING ?? 1);
const durationSeconds = Number(process.env.BENCH_DURATION ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const warmupSeconds = Number(process.env.BENCH_WARMUP ?? 3);
const nodeCount = Number(process.env.BENCH_NODES ?? 50);
const cpuProfDir = process.env.BENCH_CPU_PROF;
/** Extra node flags for the gateway child only (e.g. "--max-semi-space-size=32"), space-separated. */
const gatewayNodeFlags = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter(Boolean);
/** Hard ceiling for the whole run: it aborts rather than hang. */
const overallTimeoutMs = 60_000 + (rounds * 3 * (durationSeconds + 5) + 3 * (warmupSeconds + 5)) * 1000;
const maxLatencySamples = 4_000_000;

type TargetName = 'baseline' | 'floor' | 'gateway';

interface Window {
  target: TargetName;
  seconds: number;
  responses: number;
  cpuMicros: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  statusCodes: Record<string, number>;
  allocations: number;
}

interface Target {
  name: TargetName;
  url: string;
  pid: number;
}

/** Per-target counters the request hooks update (one autocannon run at a time). */
const counters = newAllocationCounters();

function autocannonOptions(target: Target, seconds: number): autocannon.Options {
  const common = {
    url: target.url,
    connections,
    pipelining,
    duration: seconds,
    timeout: 10,
  };
  if (target.name === 'baseline') {
    return {
      ...common,
      requests: [
        { method: 'POST', path: '/v1/sessions', headers: allocationPostHeaders, body: allocationRequestBody },
      ],
    };
  }
  return { ...common, requests: allocateReleaseRequests(counters) };
}

async function runAutocannon(
  target: Target,
  seconds: number,
  latencies: Float64Array | undefined,
  latencyCount: { n: number },
): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(autocannonOptions(target, seconds), (error, result) => {
      if (error) reject(error);
      else resolve(result);
    });
    if (latencies) {
      instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
        if (latencyCount.n < latencies.length) latencies[latencyCount.n++] = responseTime;
      });
    }
  });
}

async function measure(
  target: Target,
  seconds: number,
  latencies: Float64Array,
  latencyCount: { n: number },
): Promise<Window> {
  counters.allocations = 0;
  const cpuBefore = processCpuMicros(target.pid);
  const started = performance.now();
  const result = await withTimeout(
    runAutocannon(target, seconds, latencies, latencyCount),
    (seconds + 30) * 1000,
    `autocannon against ${target.name}`,
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = processCpuMicros(target.pid);
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) {
    statusCodes[code] = Number((stats as { count: number | string }).count);
  }
  const responses = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  return {
    target: target.name,
    seconds: elapsed,
    responses,
    cpuMicros: cpuAfter - cpuBefore,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    resets: result.resets ?? 0,
    statusCodes,
    allocations: counters.allocations,
  };
}

async function startBareServer(
  bodyFile: string,
  releaseBodyFile: string,
): Promise<Target & { stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawnTracked(['--import', 'tsx', path.join(repoRoot, 'bench/bare-server.ts')], {
    ipc: true,
    env: {
      ...process.env,
      BARE_PORT: String(port),
      BARE_BODY_FILE: bodyFile,
      BARE_RELEASE_BODY_FILE: releaseBodyFile,
    },
  });
  const [message] = (await withTimeout(once(child, 'message'), 20_000, 'bare server start')) as [
    { ready?: boolean },
  ];
  if (!message?.ready || child.pid === undefined) throw new Error('bare server did not start');
  return {
    name: 'baseline',
    url: `http://${host}:${port}`,
    pid: child.pid,
    stop: () => stopChild(child, 3000),
  };
}

/** One allocation through fetch: checks the workload works and returns the 201 and 200 bodies. */
async function probeGateway(url: string): Promise<{ allocation: string; release: string }> {
  const response = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers: allocationPostHeaders,
    body: allocationRequestBody,
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`probe allocation failed (${response.status}): ${text}`);
  const id = sessionIdPattern.exec(text)?.[1];
  const released = await fetch(`${url}/v1/sessions/${id}`, {
    method: 'DELETE',
    headers: allocationDeleteHeaders,
    signal: AbortSignal.timeout(5000),
  });
  const release = await released.text();
  if (released.status !== 200) throw new Error(`probe release failed (${released.status})`);
  return { allocation: text, release };
}

interface Summary {
  rps: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  errors: number;
  non2xx: number;
  cpuMicrosPerRequest: number;
}

function summarize(windows: Window[], latencies: Float64Array, count: number) {
  const seconds = windows.reduce((a, w) => a + w.seconds, 0);
  const responses = windows.reduce((a, w) => a + w.responses, 0);
  const cpu = windows.reduce((a, w) => a + w.cpuMicros, 0);
  const sorted = latencies.slice(0, count).sort();
  const summary: Summary = {
    rps: round(responses / seconds, 0),
    latencyP50Ms: round(percentile(sorted, 50), 3),
    latencyP99Ms: round(percentile(sorted, 99), 3),
    errors: windows.reduce((a, w) => a + w.errors + w.timeouts, 0),
    non2xx: windows.reduce((a, w) => a + w.non2xx, 0),
    cpuMicrosPerRequest: round(cpu / responses, 2),
  };
  return {
    summary,
    seconds,
    responses,
    cpuMicros: cpu,
    allocations: windows.reduce((a, w) => a + w.allocations, 0),
    resets: windows.reduce((a, w) => a + w.resets, 0),
    latencyP90Ms: round(percentile(sorted, 90), 3),
    latencyMaxMs: round(sorted.length ? sorted[sorted.length - 1]! : Number.NaN, 3),
    latencySamples: count,
  };
}

async function main(): Promise<void> {
  const machine = machineInfo();
  console.log(`bench:http on ${machineLine()}`);
  console.log(
    `connections ${connections}, pipelining ${pipelining}, ${rounds} round(s) x ${durationSeconds} s per target, warmup ${warmupSeconds} s, ${nodeCount} nodes`,
  );

  let gateway: GatewayProcess | undefined;
  let bare: (Target & { stop(): Promise<void> }) | undefined;
  let telemetry: TelemetryLoop | undefined;
  try {
    const profDir = cpuProfDir ? path.resolve(cpuProfDir) : undefined;
    if (profDir) mkdirSync(profDir, { recursive: true });
    gateway = await startGateway({
      server: { requestsPerSecondPerAddress: 1_000_000, requestBurst: 1_000_000 },
      nodeFlags: [...gatewayNodeFlags, ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])],
    });
    console.log(`gateway pid ${gateway.pid} on ${gateway.url}`);
    // A mixed fleet: most capacity on L40S, some L4 and A10G.
    const mix: Array<[string, number]> = [
      ['L40S', Math.ceil(nodeCount * 0.5)],
      ['L4', Math.ceil(nodeCount * 0.3)],
      ['A10G', nodeCount - Math.ceil(nodeCount * 0.5) - Math.ceil(nodeCount * 0.3)],
    ];
    const nodes = [];
    for (const [model, count] of mix) {
      if (count > 0)
        nodes.push(...(await registerNodes(gateway.url, benchNodes(count, model, `bench-${model}`))));
    }
    telemetry = startTelemetryLoop(gateway.url, nodes, { intervalMs: 2000, concurrency: 8 });
    await telemetry.round();
    console.log(`registered ${nodes.length} nodes (${mix.map(([m, c]) => `${c} ${m}`).join(', ')})`);

    const probe = await probeGateway(gateway.url);
    const allocationBody = probe.allocation;
    const bodyFile = path.join(tempDir('vca-bench-').dir, 'allocation.json');
    writeFileSync(bodyFile, allocationBody);
    const releaseBodyFile = path.join(path.dirname(bodyFile), 'release.json');
    writeFileSync(releaseBodyFile, probe.release);
    bare = await startBareServer(bodyFile, releaseBodyFile);
    const bareProbe = await fetch(`${bare.url}/v1/sessions`, {
      method: 'POST',
      headers: allocationPostHeaders,
      body: allocationRequestBody,
      signal: AbortSignal.timeout(5000),
    });
    const bareBody = await bareProbe.text();
    if (bareProbe.status !== 201) throw new Error(`bare server answered ${bareProbe.status}`);
    console.log(
      `bare server pid ${bare.pid}; response body ${Buffer.byteLength(bareBody)} B (gateway allocation ${Buffer.byteLength(allocationBody)} B)`,
    );

    const gatewayTarget: Target = { name: 'gateway', url: gateway.url, pid: gateway.pid };
    const floorTarget: Target = { name: 'floor', url: bare.url, pid: bare.pid };
    const targets: Record<TargetName, Target> = {
      baseline: bare,
      floor: floorTarget,
      gateway: gatewayTarget,
    };

    if (warmupSeconds > 0) {
      for (const target of [bare, floorTarget, gatewayTarget]) {
        await withTimeout(
          runAutocannon(target, warmupSeconds, undefined, { n: 0 }),
          (warmupSeconds + 30) * 1000,
          `warmup of ${target.name}`,
        );
      }
      console.log('warmed up');
    }

    const windows: Window[] = [];
    const latencies: Record<TargetName, Float64Array> = {
      baseline: new Float64Array(maxLatencySamples),
      floor: new Float64Array(maxLatencySamples),
      gateway: new Float64Array(maxLatencySamples),
    };
    const latencyCounts: Record<TargetName, { n: number }> = {
      baseline: { n: 0 },
      floor: { n: 0 },
      gateway: { n: 0 },
    };
    for (let r = 0; r < rounds; r++) {
      const order: TargetName[] =
        r % 2 === 0 ? ['baseline', 'floor', 'gateway'] : ['gateway', 'floor', 'baseline'];
      for (const name of order) {
        const window = await measure(targets[name], durationSeconds, latencies[name], latencyCounts[name]);
        windows.push(window);
        console.log(
          `round ${r + 1} ${name.padEnd(8)} ${round(window.responses / window.seconds, 0)} req/s, ` +
            `${round(window.cpuMicros / window.responses, 1)} us CPU/req, errors ${window.errors + window.timeouts}, ` +
            `non-2xx ${window.non2xx}${name !== 'baseline' ? `, ${round(window.allocations / window.seconds, 0)} alloc/s` : ''}`,
        );
      }
    }
    const telemetrySent = telemetry.sent;
    const telemetryFailed = telemetry.failed;
    await telemetry.stop();
    telemetry = undefined;

    const base = summarize(
      windows.filter((w) => w.target === 'baseline'),
      latencies.baseline,
      latencyCounts.baseline.n,
    );
    const gw = summarize(
      windows.filter((w) => w.target === 'gateway'),
      latencies.gateway,
      latencyCounts.gateway.n,
    );
    const fl = summarize(
      windows.filter((w) => w.target === 'floor'),
      latencies.floor,
      latencyCounts.floor.n,
    );
    const floorCpuPerAllocation = fl.cpuMicros / fl.allocations;
    const allocationsPerSecond = gw.allocations / gw.seconds;
    const cpuMicrosPerAllocation = gw.cpuMicros / gw.allocations;
    const cpuRatio = cpuMicrosPerAllocation / base.summary.cpuMicrosPerRequest;
    const pass = cpuRatio <= 2 && gw.summary.errors === 0 && gw.summary.non2xx === 0;

    const result = {
      baseline: base.summary,
      gateway: {
        rps: gw.summary.rps,
        allocationsPerSecond: round(allocationsPerSecond, 0),
        latencyP50Ms: gw.summary.latencyP50Ms,
        latencyP99Ms: gw.summary.latencyP99Ms,
        errors: gw.summary.errors,
        non2xx: gw.summary.non2xx,
        cpuMicrosPerRequest: gw.summary.cpuMicrosPerRequest,
        cpuMicrosPerAllocation: round(cpuMicrosPerAllocation, 2),
      },
      cpuRatio: round(cpuRatio, 3),
      floor: {
        rps: fl.summary.rps,
        allocationsPerSecond: round(fl.allocations / fl.seconds, 0),
        latencyP50Ms: fl.summary.latencyP50Ms,
        latencyP99Ms: fl.summary.latencyP99Ms,
        errors: fl.summary.errors,
        non2xx: fl.summary.non2xx,
        cpuMicrosPerRequest: fl.summary.cpuMicrosPerRequest,
        cpuMicrosPerAllocation: round(floorCpuPerAllocation, 2),
        /** The lowest cpuRatio any server can score: a bare server's allocate+release pair. */
        cpuRatio: round(floorCpuPerAllocation / base.summary.cpuMicrosPerRequest, 3),
        serverCoreUtilization: round(fl.cpuMicros / 1e6 / fl.seconds, 3),
      },
      /** The gateway's own cost over that floor, per request: (gateway - floor) CPU / 2. */
      gatewayOverFloorMicrosPerRequest: round((cpuMicrosPerAllocation - floorCpuPerAllocation) / 2, 2),
      target: { cpuRatioMax: 2, errors: 0, non2xx: 0 },
      pass,
      date: new Date().toISOString(),
      machine,
      settings: {
        connections,
        pipelining,
        rounds,
        secondsPerRoundAndTarget: durationSeconds,
        warmupSeconds,
        nodes: nodes.length,
        fleet: Object.fromEntries(mix),
        request: JSON.parse(allocationRequestBody),
        allocationResponseBytes: Buffer.byteLength(allocationBody),
        baselineResponseBytes: Buffer.byteLength(bareBody),
        cpuSource: '/proc/<pid>/stat utime+stime of the server child, all threads',
        clockTicksPerSecond,
        cpuProfile: Boolean(cpuProfDir),
        gatewayNodeFlags,
      },
      details: {
        baseline: {
          seconds: round(base.seconds, 2),
          responses: base.responses,
          cpuSeconds: round(base.cpuMicros / 1e6, 3),
          serverCoreUtilization: round(base.cpuMicros / 1e6 / base.seconds, 3),
          latencyP90Ms: base.latencyP90Ms,
          latencyMaxMs: base.latencyMaxMs,
          latencySamples: base.latencySamples,
        },
        gateway: {
          seconds: round(gw.seconds, 2),
          responses: gw.responses,
          allocations: gw.allocations,
          resets: gw.resets,
          postFailures: counters.postFailed,
          deleteFailures: counters.deleteFailed,
          lastFailure: counters.lastFailure || undefined,
          cpuSeconds: round(gw.cpuMicros / 1e6, 3),
          serverCoreUtilization: round(gw.cpuMicros / 1e6 / gw.seconds, 3),
          latencyP90Ms: gw.latencyP90Ms,
          latencyMaxMs: gw.latencyMaxMs,
          latencySamples: gw.latencySamples,
          telemetryReportsSent: telemetrySent,
          telemetryReportsFailed: telemetryFailed,
        },
        windows: windows.map((w) => ({
          ...w,
          seconds: round(w.seconds, 3),
          cpuMicros: round(w.cpuMicros, 0),
          cpuMicrosPerResponse: round(w.cpuMicros / w.responses, 2),
        })),
      },
    };

    if (!cpuProfDir) {
      const resultsDir = path.join(repoRoot, 'bench/results');
      mkdirSync(resultsDir, { recursive: true });
      writeFileSync(path.join(resultsDir, 'http.json'), `${JSON.stringify(result, null, 2)}\n`);
      writeFileSync(path.join(resultsDir, 'http.md'), markdown(result));
    }

    console.log('');
    console.log('target    req/s    alloc/s   p50 ms   p99 ms   errors  non-2xx  CPU us/req  CPU us/alloc');
    const row = (name: string, s: Summary, alloc: string, perAlloc: string) =>
      `${name.padEnd(9)} ${String(s.rps).padStart(6)}  ${alloc.padStart(8)}  ${String(s.latencyP50Ms).padStart(7)}  ${String(s.latencyP99Ms).padStart(7)}  ${String(s.errors).padStart(6)}  ${String(s.non2xx).padStart(7)}  ${String(s.cpuMicrosPerRequest).padStart(10)}  ${perAlloc.padStart(12)}`;
    console.log(row('baseline', base.summary, '-', '-'));
    for (const [name, summary, perAllocation] of [
      ['floor', fl.summary, result.floor],
      ['gateway', gw.summary, result.gateway],
    ] as const) {
      console.log(
        row(
          name,
          summary,
          String(perAllocation.allocationsPerSecond),
          String(perAllocation.cpuMicrosPerAllocation),
        ),
      );
    }
    console.log(
      `\ncpuRatio ${result.cpuRatio} (target <= 2, 0 errors, 0 non-2xx): ${pass ? 'PASS' : 'FAIL'}; ` +
        `floor (bare allocate+release) ${result.floor.cpuRatio}` +
        (cpuProfDir ? ` [profiling run: CPU profile in ${cpuProfDir}, results not written]` : ''),
    );
  } finally {
    await telemetry?.stop();
    await bare?.stop();
    await gateway?.stop();
  }
}

function markdown(result: {
  baseline: Summary;
  gateway: Summary & { allocationsPerSecond: number; cpuMicrosPerAllocation: number };
  floor: Summary & {
    allocationsPerSecond: number;
    cpuMicrosPerAllocation: number;
    cpuRatio: number;
    serverCoreUtilization: number;
  };
  gatewayOverFloorMicrosPerRequest: number;
  cpuRatio: number;
  pass: boolean;
  date: string;
  machine: ReturnType<typeof machineInfo>;
  settings: Record<string, unknown>;
  details: { gateway: Record<string, unknown>; baseline: Record<string, unknown> };
}): string {
  const b = result.baseline;
  const g = result.gateway;
  const f = result.floor;
  const s = result.settings;
  return `# HTTP allocate+release benchmark

- Date: ${result.date}
- Machine: ${result.machine.cpuModel}, ${result.machine.cores} cores, ${result.machine.ram}, Node ${result.machine.node}, ${result.machine.os} (shared machine: compare ratios, not absolute numbers)
- Load: autocannon in the benchmark process, ${s.connections} connections, pipelining ${s.pipelining}; ${s.rounds} alternating rounds x ${s.secondsPerRoundAndTarget} s per target after a ${s.warmupSeconds} s warmup each
- Baseline: bare uWebSockets.js \`POST /v1/sessions\` (bench/bare-server.ts): reads the body, parses it, answers 201 with a ${s.baselineResponseBytes} B JSON body (the gateway's allocation answer is ${s.allocationResponseBytes} B)
- Floor: the same bare server driven by the gateway's allocate+release loop (its \`DELETE /v1/sessions/:id\` answers 200 with the gateway's release body): an allocation on a server that does no work of its own
- Gateway: \`src/main.ts\`, embedded store, ${s.nodes} nodes (${Object.entries(
    s.fleet as Record<string, number>,
  )
    .map(([m, c]) => `${c} ${m}`)
    .join(
      ', ',
    )}) registered through the signed contextualize webhook, telemetry PUT for every node every 2 s during the run; each connection loops \`POST /v1/sessions\` (${JSON.stringify(s.request)}) then \`DELETE /v1/sessions/<id>\`; one allocation = one POST+DELETE pair
- Server CPU: utime+stime of the server child (all threads) from /proc/<pid>/stat around each measured window (${s.clockTicksPerSecond} ticks/s)

| target | req/s | alloc/s | p50 ms | p99 ms | errors | non-2xx | CPU us/request | CPU us/allocation |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
| baseline (bare uWS) | ${b.rps} | - | ${b.latencyP50Ms} | ${b.latencyP99Ms} | ${b.errors} | ${b.non2xx} | ${b.cpuMicrosPerRequest} | - |
| floor (bare uWS, allocate+release) | ${f.rps} | ${f.allocationsPerSecond} | ${f.latencyP50Ms} | ${f.latencyP99Ms} | ${f.errors} | ${f.non2xx} | ${f.cpuMicrosPerRequest} | ${f.cpuMicrosPerAllocation} |
| gateway | ${g.rps} | ${g.allocationsPerSecond} | ${g.latencyP50Ms} | ${g.latencyP99Ms} | ${g.errors} | ${g.non2xx} | ${g.cpuMicrosPerRequest} | ${g.cpuMicrosPerAllocation} |

Server core utilization during the windows: baseline ${result.details.baseline.serverCoreUtilization}, floor ${f.serverCoreUtilization}, gateway ${result.details.gateway.serverCoreUtilization} (1 = one core busy).

**cpuRatio** = gateway CPU per allocation / baseline CPU per request = **${result.cpuRatio}** (budget <= 2, 0 errors, 0 non-2xx).

The floor's cpuRatio, the same quotient for a server that answers both requests without doing anything, is **${f.cpuRatio}**: an allocation is two requests, so a budget of 2 leaves the gateway no CPU of its own for authentication, validation, placement, ticket signing or metrics. Over that floor the gateway spends **${result.gatewayOverFloorMicrosPerRequest} us per request** (gateway minus floor CPU per allocation, halved).

**Verdict: ${result.pass ? 'PASS' : 'FAIL'}.**
`;
}

withTimeout(main(), overallTimeoutMs, 'bench:http')
  .then(() => process.exit(0))
  .catch((error) => {
    process.stderr.write(`bench:http failed: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  });
