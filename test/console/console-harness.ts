/**
 * What the console tests share: a fresh console build (esbuild, into a temporary folder, so no test
 * reads a stale `dist/console`), a real gateway on port 0 (or on a given port, to restart it) serving
 * that build, nodes registered and reporting through the API, and Debian's chromium driven by
 * puppeteer-core — or a clear reason to skip when chromium is not installed.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { buildConsole, type ConsoleBuild } from '../../console/build-console.js';
import { idleGpus } from '../../kit/idle-telemetry.js';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { VcaConfig } from '../../src/config/schema.js';
import { signBody } from '../../src/http/credentials.js';
import { Gateway } from '../../src/http/gateway.js';
import { FakeClock } from '../support/domain.js';
import { testCredentials } from '../support/gateway.js';
import { type ApiAnswer, callAs, type Role } from '../support/http-call.js';

export { testCredentials };

export const chromiumPath = process.env.VCA_CHROMIUM ?? '/usr/bin/chromium';
export const chromiumMissing = existsSync(chromiumPath)
  ? undefined
  : `chromium is not installed at ${chromiumPath} (apt-get install chromium, as .ci/run does): the browser tests are skipped`;

export const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
];

/** Builds the console into a new temporary folder; `remove()` deletes it. */
export async function freshConsoleBuild(): Promise<ConsoleBuild & { remove(): void }> {
  const directory = mkdtempSync(path.join(tmpdir(), 'vca-console-'));
  const built = await buildConsole(directory);
  return { ...built, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

export interface ConsoleGateway {
  gateway: Gateway;
  port: number;
  url: string;
  clock: FakeClock;
  request(
    role: Role,
    method: string,
    requestPath: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiAnswer>;
  /** Registers nodes through the signed contextualize webhook; answers each node's token. */
  registerNodes(
    nodes: Array<{
      id: string;
      model?: string;
      count?: number;
      labels?: Record<string, string>;
      group?: string;
    }>,
  ): Promise<Map<string, string>>;
  telemetry(id: string, token: string, gpus: readonly object[]): Promise<ApiAnswer>;
  close(): Promise<void>;
}

let eventCounter = 0;

/** A real gateway serving the console from `consoleDirectory`, on `port` (0: any free port). */
export async function startConsoleGateway(
  consoleDirectory: string,
  options: { port?: number; overrides?: Record<string, unknown> } = {},
): Promise<ConsoleGateway> {
  const config = loadConfig({
    env: {},
    overrides: {
      server: {
        host: '127.0.0.1',
        port: options.port ?? 0,
        requestsPerSecondPerAddress: 100_000,
        requestBurst: 100_000,
        shutdownGraceSeconds: 1,
      },
      auth: {
        gamerTokens: [testCredentials.gamerToken],
        operatorTokens: [testCredentials.operatorToken],
        orchestratorSecret: testCredentials.orchestratorSecret,
        masterSecret: testCredentials.masterSecret,
      },
      log: { level: 'silent' },
      ...options.overrides,
    },
  }) as VcaConfig;
  const clock = new FakeClock(Date.now());
  const gateway = new Gateway({
    config,
    catalog: loadCatalog(config),
    logger: pino({ level: 'silent' }),
    clock,
    consoleDirectory,
  });
  let port: number;
  try {
    port = await gateway.start();
  } catch (error) {
    await gateway.stop().catch(() => {});
    throw error;
  }
  const url = `http://127.0.0.1:${port}`;
  const request: ConsoleGateway['request'] = (role, method, requestPath, body, headers = {}) =>
    callAs(url, testCredentials, role, method, requestPath, body, headers);
  return {
    gateway,
    port,
    url,
    clock,
    request,
    async registerNodes(nodes) {
      const raw = JSON.stringify({
        eventId: `console-up-${++eventCounter}-${Date.now()}`,
        event: 'scale-up',
        group: nodes[0]?.group ?? 'console-group',
        nodes: nodes.map((node) => ({
          id: node.id,
          host: '127.0.0.1',
          port: 5900,
          protocol: 'webrtc',
          gpus: [{ model: node.model ?? 'L4', count: node.count ?? 1 }],
          labels: node.labels ?? { region: 'eu-west' },
        })),
      });
      const t = Math.floor(clock.now() / 1000);
      const answer = await request('none', 'POST', '/v1/hooks/contextualize', raw, {
        'content-type': 'application/json',
        'x-vca-signature': `t=${t},v1=${signBody(testCredentials.orchestratorSecret, t, raw)}`,
      });
      if (answer.status !== 200) throw new Error(`registration failed: ${JSON.stringify(answer.body)}`);
      return new Map(
        (answer.body.registered as Array<{ id: string; token: string }>).map((node) => [node.id, node.token]),
      );
    },
    telemetry: (id, token, gpus) => request({ token }, 'PUT', `/v1/nodes/${id}/telemetry`, { gpus }),
    close: () => gateway.stop(),
  };
}

export { idleGpus };

export async function launchChromium(): Promise<Browser> {
  return puppeteer.launch({ executablePath: chromiumPath, args: chromiumFlags, headless: true });
}

/** A new page in its own browser context (its own sessionStorage), with a viewport like a laptop's. */
export async function newConsolePage(browser: Browser): Promise<Page> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  return page;
}

/** Opens the console and signs in with `token` (typing it, as an operator would). */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/console`, { waitUntil: 'load' });
  await page.waitForSelector('#token');
  await page.type('#token', token);
  await page.click('button[type="submit"]');
}

/** Waits for the live feed to be connected. */
export async function waitLive(page: Page, timeoutMs = 10_000): Promise<void> {
  await page.waitForSelector('[data-testid="connection"][data-status="live"]', { timeout: timeoutMs });
}
