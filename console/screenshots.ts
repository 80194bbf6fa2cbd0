/**
 * `npm run console:screenshots`: pictures of the operator console for the README, taken in Debian's
 * chromium (puppeteer-core, never a downloaded browser). Starts a gateway in this process with a small
 * simulated fleet — nodes registered through the signed webhook, telemetry through the node API,
 * sessions and a queue through the gamer API, one node draining — lets the history fill for a few
 * seconds, and saves each main view in the dark and the light theme as PNGs under `docs/console/`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import puppeteer from 'puppeteer-core';
import { loadCatalog } from '../src/config/load-catalog.js';
import { loadConfig } from '../src/config/load-config.js';
import type { VcaConfig } from '../src/config/schema.js';
import { signBody } from '../src/http/credentials.js';
import { Gateway } from '../src/http/gateway.js';
import { buildConsole } from './build-console.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const outputFolder = path.join(here, '..', 'docs', 'console');
const chromium = process.env.VCA_CHROMIUM ?? '/usr/bin/chromium';
const operatorToken = 'screenshot-operator-token-0123456789';
const gamerToken = 'screenshot-gamer-token-0123456789';
const orchestratorSecret = 'screenshot-orchestrator-secret';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface FleetNode {
  id: string;
  model: string;
  count: number;
  region: string;
  group: string;
}

const fleet: FleetNode[] = [
  { id: 'fra-l40s-01', model: 'L40S', count: 2, region: 'eu-central', group: 'fra-pool' },
  { id: 'fra-l40s-02', model: 'L40S', count: 2, region: 'eu-central', group: 'fra-pool' },
  { id: 'fra-l4-01', model: 'L4', count: 4, region: 'eu-central', group: 'fra-pool' },
  { id: 'ams-4080-01', model: 'RTX 4080 SUPER', count: 2, region: 'eu-west', group: 'ams-geforce' },
  { id: 'ams-4080-02', model: 'RTX 4080 SUPER', count: 2, region: 'eu-west', group: 'ams-geforce' },
  { id: 'iad-a10g-01', model: 'A10G', count: 1, region: 'us-east', group: 'iad-cloud' },
  { id: 'iad-a10g-02', model: 'A10G', count: 1, region: 'us-east', group: 'iad-cloud' },
  { id: 'iad-t4-01', model: 'T4', count: 1, region: 'us-east', group: 'iad-cloud' },
];

async function main(): Promise<void> {
  const consoleFolder = mkdtempSync(path.join(tmpdir(), 'vca-console-shots-'));
  await buildConsole(consoleFolder);
  const config = loadConfig({
    env: {},
    overrides: {
      server: { host: '127.0.0.1', port: 0 },
      auth: {
        gamerTokens: [gamerToken],
        operatorTokens: [operatorToken],
        orchestratorSecret,
        masterSecret: 'screenshot-master-secret-0123456789abcdef',
      },
      queue: { maxLength: 100, timeoutSeconds: 600, priorityClasses: ['premium', 'standard'] },
      leases: { restSeconds: 3600 },
      log: { level: 'silent' },
    },
  }) as VcaConfig;
  const gateway = new Gateway({
    config,
    catalog: loadCatalog(config),
    logger: pino({ level: 'silent' }),
    consoleDirectory: consoleFolder,
    consoleFeed: { historySampleMs: 250 },
  });
  const port = await gateway.start();
  const base = `http://127.0.0.1:${port}`;
  const call = async (token: string, method: string, target: string, body?: unknown, headers = {}) => {
    const response = await fetch(base + target, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const answer = (await response.json().catch(() => undefined)) as
      | { registered?: Array<{ id: string; token: string }> }
      | undefined;
    return { status: response.status, body: answer };
  };
  const browser = await puppeteer.launch({
    executablePath: chromium,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
    ],
  });
  try {
    const tokens = new Map<string, string>();
    for (const group of new Set(fleet.map((node) => node.group))) {
      const raw = JSON.stringify({
        eventId: `screenshots-${group}`,
        event: 'scale-up',
        group,
        nodes: fleet
          .filter((node) => node.group === group)
          .map((node) => ({
            id: node.id,
            host: `10.0.${fleet.indexOf(node)}.10`,
            port: 5900,
            protocol: 'webrtc',
            gpus: [{ model: node.model, count: node.count }],
            labels: { region: node.region },
          })),
      });
      const t = Math.floor(Date.now() / 1000);
      const answer = await call('', 'POST', '/v1/hooks/contextualize', raw, {
        'x-vca-signature': `t=${t},v1=${signBody(orchestratorSecret, t, raw)}`,
      });
      if (answer.status !== 200) throw new Error(`registration failed: ${JSON.stringify(answer.body)}`);
      for (const node of answer.body?.registered ?? []) tokens.set(node.id, node.token);
    }
    // Telemetry that wanders, one report per node every 250 ms; the T4 runs hot and throttles.
    let step = 0;
    const report = async () => {
      step++;
      await Promise.all(
        fleet.map((node, nodeIndex) => {
          if (node.id === 'iad-a10g-02' && step > 4) return undefined; // its probe went silent: stale
          const gpus = Array.from({ length: node.count }, (_, index) => {
            const wave = Math.sin((step + nodeIndex * 3 + index * 5) / 6);
            const busy = node.id === 'iad-t4-01' ? 88 : 25 + 20 * nodeIndex * 0.3 + 18 * wave;
            return {
              index,
              utilizationGpu: Math.max(0, Math.min(100, Math.round(busy))),
              utilizationEncoder: Math.max(0, Math.round(busy * 0.6)),
              memoryUsed: Math.round(2048 + 600 * nodeIndex + 400 * wave),
              temperatureGpu: node.id === 'iad-t4-01' ? 86 : Math.round(52 + 10 * wave),
              encoderSessions: 1 + (index % 2),
              throttleActive: node.id === 'iad-t4-01',
            };
          });
          return call(tokens.get(node.id)!, 'PUT', `/v1/nodes/${node.id}/telemetry`, { gpus });
        }),
      );
    };
    await report();
    const games = ['hades', 'valorant', 'rocket-league', 'stardew-valley', 'league-of-legends'];
    for (let index = 0; index < 14; index++)
      await call(gamerToken, 'POST', '/v1/sessions', {
        game: games[index % games.length],
        resolution: '1080p',
        fps: 60,
      });
    for (let index = 0; index < 24; index++)
      await call(gamerToken, 'POST', '/v1/sessions', {
        game: 'cyberpunk-2077',
        resolution: '1440p',
        fps: 60,
        priority: index % 3 === 0 ? 'premium' : 'standard',
      });
    await call(operatorToken, 'POST', '/v1/nodes/ams-4080-02/drain', { deadlineSeconds: 900 });
    for (let round = 0; round < 40; round++) {
      await report();
      await sleep(250);
    }
    const ticker = setInterval(() => void report(), 250);

    mkdirSync(outputFolder, { recursive: true });
    const views = ['fleet', 'queue', 'sessions', 'autoscaler', 'events', 'costs'];
    const written: string[] = [];
    for (const theme of ['dark', 'light'] as const) {
      const context = await browser.createBrowserContext();
      const page = await context.newPage();
      await page.setViewport({ width: 1440, height: 900 });
      await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: theme }]);
      await page.goto(`${base}/console`, { waitUntil: 'load' });
      await page.type('#token', operatorToken);
      await page.click('button[type="submit"]');
      await page.waitForSelector('[data-testid="connection"][data-status="live"]');
      for (const view of views) {
        await page.click(`#tab-${view}`);
        await sleep(view === 'sessions' || view === 'costs' ? 600 : 400);
        const file = path.join(outputFolder, `${view}-${theme}.png`);
        await page.screenshot({ path: file as `${string}.png` });
        written.push(path.relative(process.cwd(), file));
      }
      await context.close();
    }
    clearInterval(ticker);
    for (const file of written) process.stdout.write(`wrote ${file}\n`);
  } finally {
    await browser.close();
    await gateway.stop();
    rmSync(consoleFolder, { recursive: true, force: true });
  }
}

await main();
