import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freePort } from '../../kit/free-port.js';
import {
  gatewayCredentialsEnv as credentials,
  type SpawnedGateway,
  spawnGatewayProcess,
  stopAllGatewayProcesses,
} from '../../kit/gateway-process.js';
import { withTimeout } from '../../kit/polling.js';

/** tsx compiles src/ at every start: seconds on an idle machine, far more on a loaded CI runner. */
const startupTimeoutMs = 30_000;
const testTimeoutMs = 60_000;

/**
 * A gateway on a port that was free a moment ago (the gateway logs the port it binds, but not before
 * it binds it), in a clean environment: nothing from the test runner's VCA_* or NODE_OPTIONS leaks in.
 */
function startGateway(env: Record<string, string>): SpawnedGateway {
  return spawnGatewayProcess({ env: { VCA_LOG_LEVEL: 'info', ...env } });
}

afterAll(stopAllGatewayProcesses);

// Each test starts its own process on its own port, so they run side by side (tsx start-up dominates).
describe.concurrent('process: the real gateway as a child process', () => {
  it(
    'on SIGTERM tells WebSocket clients {type:"shutdown"}, closes them with 1001 and exits 0',
    async () => {
      const port = await freePort();
      const gateway = startGateway({ ...credentials, PORT: String(port) });
      const listening = await gateway.logLine((entry) => entry.msg === 'gateway listening');
      expect(listening).toMatchObject({ port, store: 'embedded' });

      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      const catalog = await fetch(`http://127.0.0.1:${port}/v1/catalog`, {
        headers: { authorization: `Bearer ${credentials.VCA_GAMER_TOKENS}` },
      });
      expect(catalog.status).toBe(200);

      const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/play?token=${credentials.VCA_GAMER_TOKENS}`);
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      const messages: any[] = [];
      socket.on('message', (data) => messages.push(JSON.parse(String(data))));
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));

      const signalledAt = Date.now();
      gateway.child.kill('SIGTERM');
      const closeCode = await withTimeout(closed, 10_000, 'WebSocket close');
      const exit = await withTimeout(gateway.exited, 10_000, 'process exit');
      expect(closeCode).toBe(1001);
      expect(messages).toContainEqual({ type: 'shutdown' });
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalledAt).toBeLessThan(10_000);
      expect(gateway.output.some((line) => line.includes('"msg":"gateway stopped"'))).toBe(true);
    },
    testTimeoutMs,
  );

  it(
    'exits with code 78 (EX_CONFIG) naming placement.strategy when VCA_PLACEMENT_STRATEGY is invalid',
    async () => {
      const port = await freePort();
      const gateway = startGateway({ ...credentials, PORT: String(port), VCA_PLACEMENT_STRATEGY: 'random' });
      const exit = await withTimeout(gateway.exited, startupTimeoutMs, 'process exit');
      expect(exit.code).toBe(78);
      const output = gateway.output.join('\n');
      expect(output).toContain('placement.strategy');
      expect(output).toContain('VCA_PLACEMENT_STRATEGY');
      expect(gateway.output.some((line) => line.includes('gateway listening'))).toBe(false);
    },
    testTimeoutMs,
  );

  it(
    'without credentials generates development ones, logs them and starts; the generated tokens work',
    async () => {
      const port = await freePort();
      const gateway = startGateway({ PORT: String(port) });
      const warning = await gateway.logLine((entry) => entry.generated !== undefined);
      expect(warning.level).toBe(40);
      const { generated } = warning;
      for (const name of [
        'VCA_GAMER_TOKENS',
        'VCA_OPERATOR_TOKENS',
        'VCA_ORCHESTRATOR_SECRET',
        'VCA_MASTER_SECRET',
      ]) {
        expect(typeof generated[name], name).toBe('string');
        expect(generated[name].length, name).toBeGreaterThanOrEqual(16);
      }
      expect(Buffer.byteLength(generated.VCA_MASTER_SECRET)).toBeGreaterThanOrEqual(32);
      await gateway.logLine((entry) => entry.msg === 'gateway listening');

      const asGamer = await fetch(`http://127.0.0.1:${port}/v1/catalog`, {
        headers: { authorization: `Bearer ${generated.VCA_GAMER_TOKENS}` },
      });
      expect(asGamer.status).toBe(200);
      const asOperator = await fetch(`http://127.0.0.1:${port}/v1/nodes`, {
        headers: { authorization: `Bearer ${generated.VCA_OPERATOR_TOKENS}` },
      });
      expect(asOperator.status).toBe(200);
      const aodh = await fetch(`http://127.0.0.1:${port}/v1/hooks/aodh`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-vca-hook-secret': generated.VCA_ORCHESTRATOR_SECRET,
        },
        body: JSON.stringify({ alarm_id: 'a-1', current: 'ok', previous: 'alarm' }),
      });
      expect(aodh.status).toBe(200);

      gateway.child.kill('SIGTERM');
      expect(await withTimeout(gateway.exited, 10_000, 'process exit')).toEqual({ code: 0, signal: null });
    },
    testTimeoutMs,
  );
});
