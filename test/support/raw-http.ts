/**
 * Test support: HTTP spoken byte by byte over node:net, for what fetch cannot send — HTTP/1.0, odd
 * header names, oversized or malformed heads, heads split across TCP segments — and for seeing whether
 * the server closes the connection.
 */
import net from 'node:net';
import { sleep } from '../../kit/polling.js';

export interface RawAnswer {
  /** Everything the server sent, as latin1 text. */
  text: string;
  /** The status code of the first status line, 0 when none came. */
  status: number;
  /** The body of the first response (after the blank line). */
  body: string;
  /** True when the server ended the connection before `waitMs` passed. */
  closedByServer: boolean;
  /** Milliseconds from the first byte sent until the server closed, or until the wait ended. */
  elapsedMs: number;
}

/**
 * Sends `segments` to 127.0.0.1:`port`, one write each with `gapMs` between them (so they travel as
 * separate TCP segments), and collects what comes back until the server closes or `waitMs` passes.
 */
export function rawRequest(
  port: number,
  segments: string | Array<string | Buffer>,
  options: { gapMs?: number; waitMs?: number } = {},
): Promise<RawAnswer> {
  const { gapMs = 20, waitMs = 3_000 } = options;
  const parts = typeof segments === 'string' ? [segments] : segments;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    const chunks: Buffer[] = [];
    const startedAt = Date.now();
    let settled = false;
    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const headEnd = text.indexOf('\r\n\r\n');
      resolve({
        text,
        status,
        body: headEnd === -1 ? '' : text.slice(headEnd + 4),
        closedByServer,
        elapsedMs: Date.now() - startedAt,
      });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset after the answer still counts as the server closing; before any byte it is a failure.
      if (chunks.length > 0 || error.code === 'ECONNRESET' || error.code === 'EPIPE') finish(true);
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(error);
      }
    });
    socket.once('connect', async () => {
      for (const [index, part] of parts.entries()) {
        if (settled || socket.destroyed) return;
        if (index > 0) await sleep(gapMs);
        socket.write(part);
      }
    });
  });
}

/** True when nothing accepts a TCP connection on 127.0.0.1:`port`. */
export function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}
