/**
 * The console feed bounds what reading the fleet costs: after a slow read (a large fleet) it pauses long
 * enough to keep reading within its share of wall time, and the history periods it skipped reach a
 * console as missed samples, never as invented values. The store is the real embedded store; only the
 * duration of its fleet read is stretched (time is the one thing faked here).
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { ConsoleFeed, type FeedSocket } from '../../src/http/console-feed.js';
import type { ConsoleServerMessage } from '../../src/http/console-protocol.js';
import { Credentials } from '../../src/http/credentials.js';
import type { WsSession } from '../../src/http/handler-api.js';
import type { EmbeddedStore } from '../../src/store/embedded/embedded-store.js';
import { catalog } from '../store/store-fixtures.js';
import { countedFleetReads, sleep } from '../support/counted-fleet-reads.js';
import { testCredentials } from './console-harness.js';

const config = loadConfig({ env: {} });
let feed: ConsoleFeed | undefined;

afterEach(() => {
  feed?.stop();
  feed = undefined;
});

function startFeed(store: EmbeddedStore, options: { historyWithoutViewers: boolean }): ConsoleFeed {
  const started = new ConsoleFeed({
    store,
    credentials: new Credentials({
      ...config.auth,
      operatorTokens: [testCredentials.operatorToken],
      orchestratorSecret: testCredentials.orchestratorSecret,
      masterSecret: testCredentials.masterSecret,
    }),
    catalog,
    autoscalerConfig: config.autoscaler,
    autoscalerView: () => ({
      enabled: false,
      lastDecision: null,
      lastScaleUpAt: null,
      lastScaleDownAt: null,
      drainingVictims: [],
    }),
    priorityClasses: ['premium', 'standard'],
    now: () => Date.now(),
    logger: pino({ level: 'silent' }),
    pollMs: 10,
    historySampleMs: 20,
    historyWithoutViewers: options.historyWithoutViewers,
    maxReadShare: { watched: 0.1, unwatched: 0.05 },
  });
  started.start();
  feed = started;
  return started;
}

/** A signed-in console as the feed's route sees it: what it is sent is collected. */
function signIn(target: ConsoleFeed): ConsoleServerMessage[] {
  const messages: ConsoleServerMessage[] = [];
  const route = target.route();
  const session: WsSession<FeedSocket> = {
    data: {} as FeedSocket,
    send: (message) => {
      messages.push(message as ConsoleServerMessage);
      return true;
    },
    close: () => {},
    bufferedBytes: () => 0,
    remoteAddress: '127.0.0.1',
    closed: false,
  };
  route.message(session, { type: 'auth', token: testCredentials.operatorToken });
  return messages;
}

describe('console feed: the cost of reading the fleet is bounded', () => {
  it('reads a slow fleet at most at its share of wall time when nobody watches', async () => {
    const { store, reads } = countedFleetReads(40);
    startFeed(store, { historyWithoutViewers: true });
    await sleep(1200);
    // 40 ms reads at a 5 % share: one read per ~800 ms, where the 20 ms history pace alone would read ~20 times.
    expect(reads()).toBeGreaterThanOrEqual(1);
    expect(reads()).toBeLessThanOrEqual(3);
  });

  it('polls a slow fleet at most at its share while a console watches, and sends skipped periods as missed', async () => {
    const { store, reads } = countedFleetReads(30);
    const started = startFeed(store, { historyWithoutViewers: false });
    const messages = signIn(started);
    await sleep(1500);
    // 30 ms reads at a 10 % share: one per ~300 ms (about 5 in 1.5 s), where pollMs (10 ms) would make ~35.
    expect(reads()).toBeGreaterThanOrEqual(2);
    expect(reads()).toBeLessThanOrEqual(8);
    const samples = messages.filter(
      (message): message is Extract<ConsoleServerMessage, { type: 'sample' }> => message.type === 'sample',
    );
    expect(samples.length).toBeGreaterThanOrEqual(2);
    // Each later sample follows a pause of ~270 ms or more: 20 ms periods went by without a read.
    for (const sample of samples.slice(1)) expect(sample.missed).toBeGreaterThanOrEqual(5);
  });

  it('keeps the nominal pace for a fleet that reads fast', async () => {
    const { store, reads } = countedFleetReads(0);
    const started = startFeed(store, { historyWithoutViewers: false });
    const messages = signIn(started);
    await sleep(1000);
    // A read of ~nothing leaves pollMs (10 ms) in charge: far more reads than the slow fleets above get.
    expect(reads()).toBeGreaterThanOrEqual(10);
    expect(messages.filter((message) => message.type === 'sample').length).toBeGreaterThanOrEqual(5);
  });
});
