/**
 * The operator console across a gateway restart on the same port, in chromium: the page notices the
 * feed is gone, keeps retrying (0.5 s doubling to 5 s), and once a gateway listens there again it
 * signs in with the token it kept and shows that gateway's state — no reload, no new sign-in.
 *
 * On Linux the new gateway can bind the port only once the connections the old one closed have left
 * TIME-WAIT (about 60 s here: the uWebSockets.js v20.30 listener does not reuse such an address), so
 * this test waits for the port as a supervisor restarting the process would.
 */
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../kit/polling.js';
import {
  type ConsoleGateway,
  chromiumMissing,
  freshConsoleBuild,
  launchChromium,
  newConsolePage,
  signIn,
  startConsoleGateway,
  testCredentials,
  waitLive,
} from './console-harness.js';

// The page's globals, used only inside page.evaluate callbacks (this program is type-checked without DOM types).
declare const sessionStorage: any;

if (chromiumMissing) console.warn(chromiumMissing);

describe.skipIf(chromiumMissing !== undefined)('operator console: the gateway restarts', () => {
  let build: Awaited<ReturnType<typeof freshConsoleBuild>>;
  let gw: ConsoleGateway;
  let browser: Browser;

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

  it('reconnects to a gateway restarted on the same port and shows the new state', async () => {
    const p = await newConsolePage(browser);
    await signIn(p, gw.url, testCredentials.operatorToken);
    await waitLive(p);
    await gw.registerNodes([{ id: 'before-restart', model: 'L4' }]);
    await p.waitForSelector('li[data-row="node"][data-node="before-restart"]', { timeout: 2000 });

    const port = gw.port;
    await gw.close();
    await p.waitForSelector('[data-testid="connection"][data-status="reconnecting"]', { timeout: 5000 });
    const downAt = Date.now();
    gw = await eventually(() => startConsoleGateway(build.directory, { port }), {
      timeoutMs: 90_000,
      intervalMs: 500,
      what: `listening on port ${port} again`,
    });
    const upAt = Date.now();
    await gw.registerNodes([{ id: 'after-restart', model: 'L4' }]);
    // Retries are at most 5 s apart.
    await waitLive(p, 7_000);
    await p.waitForSelector('li[data-row="node"][data-node="after-restart"]', { timeout: 2000 });
    const liveAt = Date.now();
    // The old gateway's nodes (its embedded store went with it) are gone from the page.
    expect(await p.$('li[data-row="node"][data-node="before-restart"]')).toBeNull();
    expect(await p.evaluate(() => sessionStorage.getItem('vca.operatorToken'))).toBe(
      testCredentials.operatorToken,
    );
    expect(p.url()).toBe(`${gw.url}/console`);
    console.info(
      `port ${port} free again after ${upAt - downAt} ms; console live ${liveAt - upAt} ms after the gateway was back`,
    );
  }, 120_000);
});
