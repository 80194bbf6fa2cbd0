import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { capture, type FakeSmi, makeFakeSmi, ProbeProcess, waitFor } from './support/fake-smi.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function gateway(): Promise<TestGateway> {
  const gw = await startTestGateway();
  cleanups.push(() => gw.close());
  return gw;
}

function fake(fixture: string): FakeSmi {
  const smi = makeFakeSmi({ fixtures: [capture(fixture)] });
  cleanups.push(() => smi.remove());
  return smi;
}

/** The probe CLI as a child process, stopped (SIGTERM) after the test; the exit code is checked there. */
function probe(gw: TestGateway, nodeId: string, token: string, extra: string[], pathFirst?: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, VCA_NODE_TOKEN: token };
  if (pathFirst) env.PATH = `${pathFirst}${path.delimiter}${process.env.PATH}`;
  const child = new ProbeProcess(
    [
      '--vca',
      gw.url,
      '--node-id',
      nodeId,
      '--interval-ms',
      '200',
      '--metrics-port',
      '0',
      '--ping-port',
      '0',
      ...extra,
    ],
    env,
  );
  cleanups.push(async () => {
    const code = await child.stop();
    expect(code, `probe exit code; stderr: ${child.stderr.slice(-2000)}`).toBe(0);
  });
  return child;
}

const node = async (gw: TestGateway, id: string) =>
  (await gw.request('operator', 'GET', `/v1/nodes/${id}`)).body;
const play = (gw: TestGateway, fps: number, game = 'stardew-valley') =>
  gw.request('gamer', 'POST', '/v1/sessions', { game, resolution: '1080p', fps, wait: false });

describe('gpu-probe end to end: nvidia-smi -> probe -> gateway', () => {
  it('feeds measured load that placement obeys, goes stale when silent, comes back, and serves /metrics and /ping', async () => {
    const gw = await gateway();
    const { token } = await gw.registerNode('render-1', 'RTX 4080 SUPER');
    // The 4080 SUPER capture under two NVENC streams: 7 % GPU, 72 % encoder, 1474 MiB.
    const smi = fake('nvidia-geforce-rtx-4080-super.load');
    const agent = probe(gw, 'render-1', token, ['--metrics-host', '127.0.0.1'], smi.dir);

    const ready = await waitFor(
      async () => {
        const view = await node(gw, 'render-1');
        return view.state === 'ready' && view.gpus[0].measured.encoder !== null && view;
      },
      { what: `node ready with telemetry; probe stderr: ${agent.stderr}` },
    );
    expect(ready.gpus[0]).toMatchObject({
      measured: { gpu: 70_000, encoder: 720_000, vramMiB: 1474, encoderSessions: 2 },
      temperatureCelsius: 46,
      throttleActive: false,
      name: 'NVIDIA GeForce RTX 4080 SUPER',
      stale: false,
      eligible: true,
    });

    // Measured 72 % encoder + a 1080p120 stream (~21 %) breaks the 90 % headroom; 1080p60 (~10 %) fits.
    expect((await play(gw, 120)).status).toBe(503);
    const placed = await play(gw, 60);
    expect(placed.status).toBe(201);
    expect(placed.body).toMatchObject({ node: { id: 'render-1' }, gpu: 0 });

    // The gamers' ping target listens on its own port (--ping-port 0 here): no auth, CORS open.
    const ping = await fetch(`http://127.0.0.1:${await agent.pingPort()}/ping`);
    expect(ping.status).toBe(204);
    expect(ping.headers.get('access-control-allow-origin')).toBe('*');

    const metricsPort = await agent.metricsPort();
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toContain('gpu_probe_utilization_ratio{gpu="0",kind="encoder"} 0.72');
    expect(metrics).toContain('gpu_probe_utilization_ratio{gpu="0",kind="gpu"} 0.07');
    expect(metrics).toContain('gpu_probe_temperature_celsius{gpu="0"} 46');
    expect(metrics).toContain(`gpu_probe_memory_used_bytes{gpu="0"} ${1474 * 1024 * 1024}`);
    expect(metrics).toContain('gpu_probe_encoder_sessions{gpu="0"} 2');
    expect(metrics).toMatch(/gpu_probe_push_total\{outcome="accepted"\} [1-9]/);
    expect(metrics).toContain('gpu_probe_smi_restarts_total 0');
    expect(metrics).toMatch(/gpu_probe_sample_age_seconds \d/);
    expect(metrics).toMatch(/gpu_probe_stale [01]/);

    // Silence: freeze the probe, let in-flight reports land, then move the gateway past its stale window.
    agent.child.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 300));
    gw.clock.advance(7000);
    await gw.tick();
    const silent = await node(gw, 'render-1');
    expect(silent.state).toBe('unhealthy');
    expect(silent.gpus[0]).toMatchObject({ stale: true, eligible: false });
    expect((await play(gw, 60)).status).toBe(503);

    // The probe returns: the next report makes the node ready and eligible again.
    agent.child.kill('SIGCONT');
    await waitFor(
      async () => {
        const view = await node(gw, 'render-1');
        return view.state === 'ready' && view.gpus[0].eligible;
      },
      { what: 'node eligible again' },
    );
    expect((await play(gw, 60)).status).toBe(201);
  });

  it('with --simulate L4, load follows the sessions the gateway places on the node', async () => {
    const gw = await gateway();
    const { token } = await gw.registerNode('sim-1', 'L4');
    const agent = probe(gw, 'sim-1', token, ['--simulate', 'L4', '--seed', '7']);

    const idle = await waitFor(
      async () => {
        const view = await node(gw, 'sim-1');
        return view.state === 'ready' && view.gpus[0].measured.gpu !== null && view;
      },
      { what: `simulated node ready; probe stderr: ${agent.stderr}` },
    );
    expect(idle.gpus[0]).toMatchObject({
      measured: { gpu: 0, encoder: 0, encoderSessions: 0 },
      name: 'NVIDIA L4',
      memoryTotalMiB: 23034,
    });

    const placed = await play(gw, 60, 'unigine-heaven');
    expect(placed.status).toBe(201);
    expect(placed.body).toMatchObject({ node: { id: 'sim-1' }, gpu: 0 });
    // The simulation learns its sessions from the telemetry answer: that contract first, plainly.
    const answer = await gw.telemetry('sim-1', token, [{ index: 0 }]);
    expect(answer.body.sessions, "the telemetry answer's `sessions` (what --simulate follows)").toEqual([
      {
        sessionId: placed.body.sessionId,
        gpu: 0,
        game: 'unigine-heaven',
        width: 1920,
        height: 1080,
        fps: 60,
      },
    ]);

    const busy = await waitFor(
      async () => {
        const view = await node(gw, 'sim-1');
        return view.gpus[0].measured.gpu > 0 && view.gpus[0].measured.encoder > 0 && view;
      },
      { what: 'simulated load from the placed session' },
    );
    expect(busy.gpus[0].measured.encoderSessions).toBe(1);
    // 1080p60 on an L4 is ~10 % of its NVENC; the render share is the title's cost times its true factor.
    expect(busy.gpus[0].measured.encoder).toBeGreaterThan(60_000);
    expect(busy.gpus[0].measured.encoder).toBeLessThan(140_000);
  });
});
