import { afterAll, describe, expect, it } from 'vitest';
import {
  gatewayCredentialsEnv as credentials,
  spawnGatewayProcess,
  stopAllGatewayProcesses,
} from '../../kit/gateway-process.js';
import { withTimeout } from '../../kit/polling.js';
import { connectionRefused, rawRequest } from '../support/raw-http.js';

afterAll(stopAllGatewayProcesses);

describe('process: the admin listener of the real gateway', () => {
  it('listens on VCA_ADMIN_PORT, answers HTTP/1.0 health checks, and closes on SIGTERM', async () => {
    const gateway = spawnGatewayProcess({
      env: { ...credentials, VCA_LOG_LEVEL: 'info', PORT: '0', VCA_ADMIN_PORT: '0' },
    });
    const listening = await gateway.logLine((entry) => entry.msg === 'gateway listening');
    const adminPort: number = listening.adminPort;
    expect(adminPort).toBeGreaterThan(0);
    expect(adminPort).not.toBe(listening.port);

    const ready = await rawRequest(adminPort, 'GET /readyz HTTP/1.0\r\n\r\n');
    expect(ready.status, ready.text).toBe(200);
    expect(ready.closedByServer).toBe(true);
    const nodes = await fetch(`http://127.0.0.1:${adminPort}/v1/nodes`, {
      headers: { authorization: `Bearer ${credentials.VCA_OPERATOR_TOKENS}` },
    });
    expect(nodes.status).toBe(200);

    gateway.kill('SIGTERM');
    expect(await withTimeout(gateway.exited, 10_000, 'process exit')).toEqual({ code: 0, signal: null });
    expect(gateway.output.some((line) => line.includes('"msg":"admin server closed"'))).toBe(true);
    expect(await connectionRefused(adminPort)).toBe(true);
    expect(gateway.bugs()).toEqual([]);
  }, 60_000);
});
