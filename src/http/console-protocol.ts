/**
 * What the operator console's live feed (`/v1/console/feed`, `console-feed.ts`) and the page in the
 * browser (`console/src/`) say to each other: one definition, type-only, imported by both sides.
 *
 * The browser opens the WebSocket and sends `auth` with the operator token as its first message (a
 * browser cannot set an Authorization header on a WebSocket, and a token in a URL ends up in logs).
 * The gateway answers `hello`, then pushes what changed: nodes (each node in full, a removed one by
 * id), the queue and autoscaler summary, timeline events, and a history `sample` tick.
 */
import type { NodeView } from '../state/state-store.js';

/** History of one value, oldest first, one sample per `historySampleMs`: 2 hex digits per sample
 * (a percentage 0-100), `ff` where nothing was measured. */
export type HexSeries = string;

export interface ConsoleAuthMessage {
  type: 'auth';
  token: string;
}

export type ConsoleClientMessage = ConsoleAuthMessage;

/** A node as the console shows it; `history` (effective render load per GPU) comes with a node's first send. */
export interface ConsoleNode extends NodeView {
  history?: HexSeries[];
}

export interface ConsoleQueueClass {
  priority: string;
  length: number;
  /** Wait of the longest-waiting session of the class, ms; null when the class is empty. */
  oldestWaitMs: number | null;
}

export interface ConsoleSummary {
  at: number;
  queue: {
    length: number;
    oldestWaitMs: number | null;
    byPriority: ConsoleQueueClass[];
  };
  autoscaler: {
    enabled: boolean;
    bufferReferenceSlots: number;
    freeReferenceSlots: number;
    referenceSlotShare: number;
    minNodes: number;
    maxNodes: number;
    scaleUpCooldownSeconds: number;
    scaleDownCooldownSeconds: number;
    /** When each cooldown ends, ms; null when none is running. */
    scaleUpCooldownUntil: number | null;
    scaleDownCooldownUntil: number | null;
    lastDecision: { action: string; reason: string; freeSlots: number; at: number } | null;
    drainingVictims: string[];
    lastSignals: ConsoleEvent[];
  };
}

export type ConsoleEventKind =
  | 'webhook'
  | 'registration'
  | 'drain'
  | 'migration'
  | 'callback'
  | 'signal'
  | 'session'
  | 'node'
  | 'error';

export interface ConsoleEvent {
  seq: number;
  at: number;
  kind: ConsoleEventKind;
  text: string;
  node?: string;
  session?: string;
}

export type ConsoleServerMessage =
  | {
      type: 'hello';
      serverTime: number;
      historySampleMs: number;
      historySamples: number;
      /** The queue length's history, oldest first (null: no sample). */
      queueHistory: Array<number | null>;
    }
  | { type: 'nodes'; nodes: ConsoleNode[]; removed: string[] }
  | { type: 'summary'; summary: ConsoleSummary }
  | { type: 'events'; events: ConsoleEvent[] }
  /**
   * A history sample was taken: append `missed` empty samples (periods the gateway did not read the
   * fleet: it polls a large fleet less often), then each GPU's current effective render load and
   * `queueLength`.
   */
  | { type: 'sample'; at: number; queueLength: number; missed?: number }
  | { type: 'error'; code: string; detail: string };

/** Close codes of the feed (4000-4999 are the application's). */
export const consoleCloseCodes = {
  /** The first message was not a valid operator token. */
  signInRefused: 4401,
  /** No `auth` message in time. */
  signInTimeout: 4408,
} as const;
