/**
 * Specifications of the callback outbox worker, one pass at a time, on the embedded store with a fake
 * clock and a real HTTP receiver on port 0; and of the Retry-After reading it relies on.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CallbackOutbox, type OutboxOutcome } from '../../src/hooks/callback-outbox.js';
import { retryAfterMs } from '../../src/hooks/outbound-post.js';
import { createEmbeddedStore } from '../store/embedded-factory.js';
import { readyNode } from '../store/store-fixtures.js';
import { FakeClock } from '../support/domain.js';

describe('outbound post: Retry-After', () => {
  it('reads delay-seconds', () => {
    expect(retryAfterMs('1', null, 0)).toBe(1_000);
    expect(retryAfterMs(' 120 ', null, 0)).toBe(120_000);
  });

  it("reads an HTTP date against the answer's own Date header, else against now", () => {
    const date = 'Wed, 21 Oct 2026 07:28:00 GMT';
    const later = 'Wed, 21 Oct 2026 07:28:30 GMT';
    expect(retryAfterMs(later, date, 0)).toBe(30_000);
    expect(retryAfterMs(later, null, Date.parse(date) + 10_000)).toBe(20_000);
    expect(retryAfterMs(date, later, 0)).toBe(0);
  });

  it('ignores an absent or unreadable value', () => {
    expect(retryAfterMs(null, null, 0)).toBeNull();
    expect(retryAfterMs('soon', null, 0)).toBeNull();
    expect(retryAfterMs('-5', null, 0)).toBeNull();
  });
});

describe('callback outbox: one pass', () => {
  let receiver: http.Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
    receiver = undefined;
  });

  async function startReceiver(answer: { status: number; headers?: Record<string, string> }) {
    const keys: string[] = [];
    receiver = http.createServer((request, response) => {
      keys.push(String(request.headers['idempotency-key']));
      request.resume();
      request.on('end', () => {
        response.writeHead(answer.status, answer.headers ?? {});
        response.end();
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    return { keys, url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/cb` };
  }

  async function drainedStore(clock: FakeClock) {
    const store = createEmbeddedStore();
    await readyNode(store, 'node-a', [{ model: 'L4', count: 1 }], clock.now());
    await store.setNodeState('node-a', 'draining', clock.now(), clock.now() + 60_000);
    return store;
  }

  function outbox(
    store: ReturnType<typeof createEmbeddedStore>,
    clock: FakeClock,
    url: string,
    results: Array<[OutboxOutcome, string]>,
    overrides: Partial<ConstructorParameters<typeof CallbackOutbox>[0]> = {},
  ) {
    return new CallbackOutbox({
      store,
      url,
      clock,
      timeoutMs: 1_000,
      backoffMs: 1_000,
      maxDelayMs: 60_000,
      attempts: 3,
      random: () => 0.5,
      onResult: (_entry, outcome, detail) => results.push([outcome, detail]),
      ...overrides,
    });
  }

  it('bounds the wait a Retry-After asks for by maxDelayMs', async () => {
    const clock = new FakeClock(1_000_000);
    const store = await drainedStore(clock);
    const { url, keys } = await startReceiver({ status: 429, headers: { 'retry-after': '86400' } });
    const results: Array<[OutboxOutcome, string]> = [];
    const worker = outbox(store, clock, url, results);
    await worker.deliverDue();
    expect(keys).toEqual(['node-drained:node-a:1000000']);
    expect(results).toEqual([['retried', 'HTTP 429; next attempt in 60000 ms']]);
    clock.advance(59_999);
    await worker.deliverDue();
    expect(keys).toHaveLength(1);
    clock.advance(1);
    await worker.deliverDue();
    expect(keys).toHaveLength(2);
  });

  it('backs off exponentially without a Retry-After and gives up after its last attempt', async () => {
    const clock = new FakeClock(0);
    const store = await drainedStore(clock);
    const { url, keys } = await startReceiver({ status: 502 });
    const results: Array<[OutboxOutcome, string]> = [];
    const worker = outbox(store, clock, url, results);
    for (const wait of [0, 1_000, 2_000]) {
      clock.advance(wait);
      await worker.deliverDue();
    }
    expect(keys).toHaveLength(3);
    expect(results).toEqual([
      ['retried', 'HTTP 502; next attempt in 1000 ms'],
      ['retried', 'HTTP 502; next attempt in 2000 ms'],
      ['failed', 'HTTP 502; given up after 3 attempt(s)'],
    ]);
    expect(await store.outboxLength()).toBe(0);
  });

  it('treats a receiver that does not answer in time as a failed attempt', async () => {
    const clock = new FakeClock(0);
    const store = await drainedStore(clock);
    // Listening but never answering: the attempt ends at its timeout.
    receiver = http.createServer(() => {});
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/cb`;
    const results: Array<[OutboxOutcome, string]> = [];
    await outbox(store, clock, url, results, { timeoutMs: 100 }).deliverDue();
    receiver.closeAllConnections();
    expect(results).toHaveLength(1);
    expect(results[0]![0]).toBe('retried');
    expect(await store.outboxLength()).toBe(1);
  });
});
