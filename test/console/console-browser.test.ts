/**
 * The operator console in a real browser: Debian's chromium, headless, driven by puppeteer-core,
 * against a real gateway on a free port serving a console built for this run. Nodes register and
 * report through the API as they do in production; the console is only ever looked at and clicked.
 */
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../kit/polling.js';
import {
  type ConsoleGateway,
  chromiumMissing,
  freshConsoleBuild,
  idleGpus,
  launchChromium,
  newConsolePage,
  signIn,
  startConsoleGateway,
  testCredentials,
  waitLive,
} from './console-harness.js';

// The page's globals, used only inside page.evaluate callbacks (this program is type-checked without DOM types).
declare const document: any;
declare const sessionStorage: any;

if (chromiumMissing) console.warn(chromiumMissing);

describe.skipIf(chromiumMissing !== undefined)('operator console in chromium', () => {
  let build: Awaited<ReturnType<typeof freshConsoleBuild>>;
  let gw: ConsoleGateway;
  let browser: Browser;
  const pages: Page[] = [];

  beforeAll(async () => {
    build = await freshConsoleBuild();
    gw = await startConsoleGateway(build.directory);
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    build?.remove();
  });

  async function page(): Promise<Page> {
    const created = await newConsolePage(browser);
    pages.push(created);
    return created;
  }

  /** The effective percentage a GPU's bar shows for `dim`, as the page renders it. */
  async function barValue(p: Page, node: string, gpu: number, dim: string): Promise<number | undefined> {
    return p.evaluate(
      (n, g, d) => {
        const bar = document.querySelector(
          `li[data-row="gpu"][data-node="${n}"][data-gpu="${g}"] [data-dim="${d}"]`,
        ) as any;
        return bar ? Number(bar.dataset.effective) : undefined;
      },
      node,
      gpu,
      dim,
    );
  }

  it('refuses sign-in with a wrong token and keeps nothing', async () => {
    const p = await page();
    await signIn(p, gw.url, 'operator-token-but-wrong-0000');
    const alert = await p.waitForSelector('[role="alert"]', { timeout: 5000 });
    expect(await alert!.evaluate((element) => element.textContent)).toContain('Sign-in refused');
    expect(await p.$('[data-testid="connection"]')).toBeNull();
    expect(await p.evaluate(() => sessionStorage.length)).toBe(0);
    // A gamer token is no operator token either.
    await p.$eval('#token', (input) => {
      (input as any).value = '';
    });
    await p.type('#token', testCredentials.gamerToken);
    await p.click('button[type="submit"]');
    await eventually(async () => {
      expect(await p.$eval('[role="alert"]', (element) => element.textContent)).toContain('Sign-in refused');
    });
    expect(await p.evaluate(() => sessionStorage.length)).toBe(0);
  });

  it('signs in with the keyboard alone, and keeps the token out of the URL', async () => {
    const p = await page();
    await p.goto(`${gw.url}/console`, { waitUntil: 'load' });
    await p.waitForSelector('#token');
    // The token field has the focus on arrival; Tab and Shift+Tab move between the field and the button.
    await eventually(async () => expect(await p.evaluate(() => document.activeElement?.id)).toBe('token'));
    await p.keyboard.press('Tab');
    expect(await p.evaluate(() => document.activeElement?.textContent)).toBe('Sign in');
    await p.keyboard.down('Shift');
    await p.keyboard.press('Tab');
    await p.keyboard.up('Shift');
    expect(await p.evaluate(() => document.activeElement?.id)).toBe('token');
    expect(await p.evaluate(() => document.querySelector('label[for="token"]')?.textContent?.trim())).toBe(
      'Operator token',
    );
    await p.keyboard.type(testCredentials.operatorToken);
    await p.keyboard.press('Tab');
    expect(await p.evaluate(() => document.activeElement?.textContent)).toBe('Sign in');
    await p.keyboard.press('Enter');
    await waitLive(p);
    expect(p.url()).not.toContain(testCredentials.operatorToken);
    expect(await p.evaluate(() => sessionStorage.getItem('vca.operatorToken'))).toBe(
      testCredentials.operatorToken,
    );
    // Every control of the dashboard has an accessible name.
    const unnamed = await p.evaluate(() =>
      [...document.querySelectorAll('button, input, select')]
        .filter((element) => {
          const labelled =
            element.getAttribute('aria-label') ||
            element.textContent?.trim() ||
            (element as any).labels?.length;
          return !labelled;
        })
        .map((element) => element.outerHTML),
    );
    expect(unnamed).toEqual([]);
  });

  it('shows nodes registered through the API, and telemetry moves their bars within 1 s', async () => {
    const p = await page();
    await signIn(p, gw.url, testCredentials.operatorToken);
    await waitLive(p);
    const tokens = await gw.registerNodes([{ id: 'bars-1', model: 'L4', count: 2, group: 'bars-group' }]);
    await p.waitForSelector('li[data-row="node"][data-node="bars-1"]', { timeout: 2000 });
    expect(
      await p.$eval('li[data-row="node"][data-node="bars-1"]', (row) => row.getAttribute('data-state')),
    ).toBe('provisioning');
    const token = tokens.get('bars-1')!;
    const report = (render: number, encoder: number) =>
      idleGpus(2).map((gpu, index) => ({
        ...gpu,
        utilizationGpu: index === 0 ? render : 3,
        utilizationEncoder: encoder,
      }));
    expect((await gw.telemetry('bars-1', token, report(10, 5))).status).toBe(200);
    await eventually(async () => expect(await barValue(p, 'bars-1', 0, 'gpu')).toBe(10), { timeoutMs: 2000 });
    expect(
      await p.$eval('li[data-row="node"][data-node="bars-1"]', (row) => row.getAttribute('data-state')),
    ).toBe('ready');

    for (const [render, encoder] of [
      [80, 40],
      [35, 60],
    ] as const) {
      const sentAt = Date.now();
      expect((await gw.telemetry('bars-1', token, report(render, encoder))).status).toBe(200);
      await eventually(
        async () => {
          expect(await barValue(p, 'bars-1', 0, 'gpu')).toBe(render);
          expect(await barValue(p, 'bars-1', 0, 'encoder')).toBe(encoder);
        },
        { timeoutMs: 1000, intervalMs: 10, what: `bars at ${render}% / ${encoder}%` },
      );
      const elapsed = Date.now() - sentAt;
      expect(elapsed).toBeLessThan(1000);
      console.info(
        `telemetry ${render}% / ${encoder}% on the bars ${elapsed} ms after the report was answered`,
      );
    }
    // The width of the effective bar follows the value.
    const width = await p.$eval(
      'li[data-row="gpu"][data-node="bars-1"][data-gpu="0"] [data-dim="gpu"] .fill.effective',
      (element) => (element as any).style.width,
    );
    expect(width).toBe('35%');
  });

  it('flags throttling, heat and stale telemetry, and marks an unknown measure as unknown', async () => {
    const tokens = await gw.registerNodes([{ id: 'flags-1', model: 'L4', count: 2 }]);
    const p = await page();
    await signIn(p, gw.url, testCredentials.operatorToken);
    await waitLive(p);
    const gpus = [
      {
        index: 0,
        utilizationGpu: 50,
        utilizationEncoder: 10,
        memoryUsed: 1024,
        temperatureGpu: 88,
        encoderSessions: 0,
        throttleActive: true,
      },
      // GPU 1 reports no encoder utilization: unknown, never zero.
      { index: 1, utilizationGpu: 5, memoryUsed: 0, temperatureGpu: 40, encoderSessions: 0 },
    ];
    expect((await gw.telemetry('flags-1', tokens.get('flags-1')!, gpus)).status).toBe(200);
    const gpuRow = (index: number) => `li[data-row="gpu"][data-node="flags-1"][data-gpu="${index}"]`;
    await p.waitForFunction(
      (selector) => document.querySelector(selector)?.textContent?.includes('throttling'),
      { timeout: 2000 },
      gpuRow(0),
    );
    expect(await p.$eval(`${gpuRow(0)} .flag.hot`, (element) => element.textContent)).toBe('88°C');
    expect(
      await p.$eval(`${gpuRow(1)} [data-dim="encoder"]`, (element) => (element as any).dataset.measured),
    ).toBe('unknown');
    expect(await p.$(`${gpuRow(1)} [data-dim="encoder"] .fill.unknown`)).not.toBeNull();
    expect(await p.$(`${gpuRow(0)} [data-stale="true"]`)).toBeNull();
    // No report for longer than reportIntervalSeconds x staleAfterIntervals (2 s x 3): stale, node unhealthy.
    gw.clock.advance(7_000);
    await gw.gateway.vca.fleet.tick();
    await p.waitForSelector(`${gpuRow(0)} [data-stale="true"]`, { timeout: 2000 });
    await p.waitForSelector('li[data-row="node"][data-node="flags-1"][data-state="unhealthy"]', {
      timeout: 2000,
    });
  });

  it('drains a node from the console (with a confirmation and a deadline), then undrains it', async () => {
    const tokens = await gw.registerNodes([
      { id: 'drain-1', model: 'L4', labels: { region: 'drain-region' } },
    ]);
    expect((await gw.telemetry('drain-1', tokens.get('drain-1')!, idleGpus(1))).status).toBe(200);
    // A session keeps the node draining until its deadline (an empty node would be drained at once).
    const session = await gw.request('gamer', 'POST', '/v1/sessions', {
      game: 'stardew-valley',
      resolution: '1080p',
      fps: 60,
      region: 'drain-region',
    });
    expect(session.status).toBe(201);
    expect(session.body.node.id).toBe('drain-1');

    const p = await page();
    await signIn(p, gw.url, testCredentials.operatorToken);
    await waitLive(p);
    await p.type('input[type="search"]', 'drain-1');
    const button = await p.waitForSelector('button[aria-label="Drain drain-1"]', { timeout: 3000 });
    await button!.click();
    const dialog = await p.waitForSelector('[data-testid="confirm-dialog"][open]');
    expect(await dialog!.evaluate((element) => element.textContent)).toContain('Drain drain-1?');
    expect((await gw.request('operator', 'GET', '/v1/nodes/drain-1')).body.state).toBe('ready');
    await p.type('[data-testid="confirm-dialog"] input[name="deadline"]', '600');
    await p.click('[data-testid="confirm-dialog"] button.primary');
    await eventually(async () => {
      const node = await gw.request('operator', 'GET', '/v1/nodes/drain-1');
      expect(node.body.state).toBe('draining');
      expect(node.body.drainDeadline - gw.clock.now()).toBeGreaterThan(590_000);
    });
    await p.waitForSelector('li[data-row="node"][data-node="drain-1"][data-state="draining"]', {
      timeout: 2000,
    });

    await (await p.waitForSelector('button[aria-label="Undrain drain-1"]'))!.click();
    await p.waitForSelector('[data-testid="confirm-dialog"][open]');
    await p.click('[data-testid="confirm-dialog"] button.primary');
    await eventually(async () =>
      expect((await gw.request('operator', 'GET', '/v1/nodes/drain-1')).body.state).toBe('ready'),
    );
    await p.waitForSelector('li[data-row="node"][data-node="drain-1"][data-state="ready"]', {
      timeout: 2000,
    });
  });

  it('lists sessions and ends one from the console', async () => {
    const tokens = await gw.registerNodes([{ id: 'end-1', model: 'L4', labels: { region: 'end-region' } }]);
    expect((await gw.telemetry('end-1', tokens.get('end-1')!, idleGpus(1))).status).toBe(200);
    const session = await gw.request('gamer', 'POST', '/v1/sessions', {
      game: 'hades',
      resolution: '1080p',
      fps: 60,
      region: 'end-region',
    });
    expect(session.status).toBe(201);
    const id = session.body.sessionId as string;
    const p = await page();
    await signIn(p, gw.url, testCredentials.operatorToken);
    await waitLive(p);
    await p.click('#tab-sessions');
    await p.type('input[name="node"]', 'end-1');
    await p.click('form.filters button[type="submit"]');
    await p.waitForSelector(`tr[data-session="${id}"]`, { timeout: 3000 });
    // Only the filtered answer is shown, even when the unfiltered one of the opening comes back later.
    await eventually(async () =>
      expect(await p.$$eval('[data-testid="sessions-table"] tbody tr', (rows) => rows.length)).toBe(1),
    );
    await sleep(300);
    expect(await p.$$eval('[data-testid="sessions-table"] tbody tr', (rows) => rows.length)).toBe(1);
    await p.click(`button[aria-label="End session ${id}"]`);
    await p.waitForSelector('[data-testid="confirm-dialog"][open]');
    await p.click('[data-testid="confirm-dialog"] button.primary');
    await eventually(async () =>
      expect((await gw.request('gamer', 'GET', `/v1/sessions/${id}`)).body.state).toBe('ended'),
    );
    await eventually(async () => expect(await p.$(`tr[data-session="${id}"]`)).toBeNull());
  });

  it('shows the queue, the autoscaler, the timeline and "no learned costs yet"', async () => {
    const p = await page();
    await signIn(p, gw.url, testCredentials.operatorToken);
    await waitLive(p);
    await p.click('#tab-queue');
    await eventually(async () =>
      expect(await p.$eval('[data-testid="queue-length"]', (element) => element.textContent)).toBe('0'),
    );
    // uPlot draws its canvas in an effect after the view renders: wait for it, not for the same tick.
    await eventually(async () => expect(await p.$('.queue-chart canvas')).not.toBeNull());
    await p.click('#tab-autoscaler');
    await eventually(async () =>
      expect(await p.$eval('[data-testid="autoscaler-buffer"]', (element) => element.textContent)).toMatch(
        /^\d+ \/ 8$/,
      ),
    );
    await p.click('#tab-events');
    await p.waitForSelector('[data-testid="events"] li[data-kind="registration"]');
    await p.waitForSelector('[data-testid="events"] li[data-kind="webhook"]');
    await p.click('#tab-costs');
    const costs = await gw.request('operator', 'GET', '/v1/costs');
    if (costs.status === 404 || (costs.body?.costs ?? []).length === 0) {
      await eventually(async () =>
        expect(await p.$eval('[data-testid="costs-message"]', (element) => element.textContent)).toBe(
          'No learned costs yet.',
        ),
      );
    } else {
      await p.waitForSelector('[data-testid="costs-table"]');
    }
  });

  it('renders 1,000 nodes with a bounded number of DOM rows', async () => {
    const ids = Array.from({ length: 1000 }, (_, index) => `fleet-${String(index).padStart(4, '0')}`);
    for (let start = 0; start < ids.length; start += 100)
      await gw.registerNodes(ids.slice(start, start + 100).map((id) => ({ id, model: 'L4', count: 2 })));
    const p = await page();
    await signIn(p, gw.url, testCredentials.operatorToken);
    await waitLive(p);
    await p.type('input[type="search"]', 'fleet-');
    await eventually(
      async () =>
        expect(await p.$eval('[data-testid="fleet-counts"]', (element) => element.textContent)).toMatch(
          /^10\d\d nodes/,
        ),
      { timeoutMs: 10_000 },
    );
    const measure = () =>
      p.evaluate(() => ({
        rows: document.querySelectorAll('li.row').length,
        elements: document.querySelectorAll('*').length,
        height: (document.querySelector('.spacer') as any).offsetHeight,
      }));
    const top = await measure();
    // 1,000 nodes x (1 node row + 2 GPU rows) + their group: 3,001 rows exist; a screenful is in the DOM.
    expect(top.height).toBe(3001 * 40);
    expect(top.rows).toBeGreaterThan(10);
    expect(top.rows).toBeLessThanOrEqual(60);
    expect(top.elements).toBeLessThan(2500);
    // Scrolled to the end, the last node is there and the row count stays bounded.
    await p.$eval('[data-testid="fleet-scroller"]', (element) => {
      element.scrollTop = element.scrollHeight;
    });
    await p.waitForSelector('li[data-row="node"][data-node="fleet-0999"]', { timeout: 3000 });
    const bottom = await measure();
    expect(bottom.rows).toBeLessThanOrEqual(60);
    expect(await p.$('li[data-row="node"][data-node="fleet-0000"]')).toBeNull();
  }, 60_000);

  it('weighs at most 250 KB on first load (every byte the page loads, summed)', async () => {
    const p = await page();
    const client = await p.createCDPSession();
    await client.send('Network.enable');
    let bytes = 0;
    const urls: string[] = [];
    client.on('Network.loadingFinished', (event) => {
      bytes += event.encodedDataLength;
    });
    client.on('Network.requestWillBeSent', (event) => {
      urls.push(event.request.url);
    });
    await p.goto(`${gw.url}/console`, { waitUntil: 'networkidle0' });
    await p.waitForSelector('#token');
    expect(bytes).toBeGreaterThan(20_000);
    expect(bytes).toBeLessThanOrEqual(250 * 1024);
    // Nothing from another origin: no CDN, no external fonts.
    for (const url of urls) expect(url.startsWith(gw.url) || url.startsWith('data:')).toBe(true);
    console.info(`console page weight: ${bytes} bytes over ${urls.length} requests`);
  });
});
