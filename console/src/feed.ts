/**
 * The console's connection to the gateway's live feed: a WebSocket to `/v1/console/feed` whose first
 * message is the operator token (never the URL). Reconnects by itself with a growing delay (0.5 s up
 * to 5 s) when the gateway goes away — a restart, a deploy — and starts from a fresh view each time.
 * A refused token (close 4401) is not retried: the operator must sign in again.
 */
import { type ConsoleServerMessage, consoleCloseCodes } from '../../src/http/console-protocol.js';
import type { ConsoleModel } from './model.js';

export type FeedStatus = 'connecting' | 'live' | 'reconnecting' | 'refused';

export interface FeedOptions {
  token: string;
  model: ConsoleModel;
  onStatus: (status: FeedStatus, detail: string) => void;
}

export class FeedConnection {
  private socket: WebSocket | undefined;
  private retryTimer: number | undefined;
  private delayMs = 500;
  private stopped = false;
  private readonly options: FeedOptions;

  constructor(options: FeedOptions) {
    this.options = options;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.socket?.close(1000, 'signed out');
    this.socket = undefined;
  }

  private open(): void {
    const { token, model, onStatus } = this.options;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/v1/console/feed`);
    this.socket = socket;
    let live = false;
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'auth', token }));
    });
    socket.addEventListener('message', (event) => {
      let message: ConsoleServerMessage;
      try {
        message = JSON.parse(String(event.data)) as ConsoleServerMessage;
      } catch {
        return;
      }
      if (message.type === 'hello') {
        live = true;
        this.delayMs = 500;
        model.reset();
        onStatus('live', 'live');
      }
      if (message.type === 'error' && !live) onStatus('refused', message.detail);
      model.apply(message);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = undefined;
      if (event.code === consoleCloseCodes.signInRefused) {
        onStatus('refused', 'The gateway refused this operator token.');
        return;
      }
      onStatus(
        'reconnecting',
        `connection lost (code ${event.code}); retrying in ${Math.round(this.delayMs / 100) / 10} s`,
      );
      this.retryTimer = window.setTimeout(() => this.open(), this.delayMs);
      this.delayMs = Math.min(5000, this.delayMs * 2);
    });
  }
}
