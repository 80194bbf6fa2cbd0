/**
 * Watches queued sessions that reported latencies for the moment their latency policy relaxes. The
 * store applies the policy in force on every queue pass (each gateway tick runs one), so a relaxed
 * session is re-evaluated within a tick; this watch finds, after each pass, the sessions still queued
 * whose cap changed, so the gateway can tell their WebSocket clients the new cap and count the
 * relaxation. Sessions without a later relaxation are not held at all.
 */
import type { VcaEvent } from './events.js';
import type { SessionRecord } from './session.js';

/** The cap in force for a session at an instant, and when the next, looser one starts (null: never). */
export interface LatencyCap {
  maxLatencyMs: number | null;
  relaxesAt: number | null;
}

/** Reads the configured policies for `session` at `at` (ms); see `src/placement/latency-policy.ts`. */
export type LatencyCapAt = (session: SessionRecord, at: number) => LatencyCap;

export interface LatencyRelaxation {
  sessionId: string;
  /** Still queued: its client is told the new cap. False when the relaxation is learnt at assignment. */
  queued: boolean;
  maxLatencyMs: number | null;
  /** Policies passed since last seen (a long tick may pass more than one). */
  steps: number;
  /** The session was queued by this instance (it counts the relaxation; others only announce it). */
  local: boolean;
}

interface Watched {
  session: SessionRecord;
  relaxesAt: number;
  local: boolean;
}

/** A guard against a policy function that never moves `relaxesAt` forward. */
const maxStepsPerCheck = 1_000;

export class LatencyWatch {
  private readonly capAt: LatencyCapAt;
  private readonly watched = new Map<string, Watched>();

  constructor(capAt: LatencyCapAt) {
    this.capAt = capAt;
  }

  get size(): number {
    return this.watched.size;
  }

  /** Feeds a domain event seen at `now`; `local`: decided by this instance (not relayed). */
  observe(event: VcaEvent, now: number, local: boolean): LatencyRelaxation[] {
    switch (event.type) {
      case 'session-queued': {
        const { session } = event;
        if (session.latencies === undefined) return [];
        const { relaxesAt } = this.capAt(session, now);
        const known = this.watched.get(session.id);
        if (relaxesAt === null) this.watched.delete(session.id);
        else this.watched.set(session.id, { session, relaxesAt, local: local || (known?.local ?? false) });
        return [];
      }
      case 'session-assigned':
      case 'session-ended': {
        const entry = this.watched.get(event.session.id);
        if (!entry) return [];
        this.watched.delete(event.session.id);
        const at = event.session.assignedAt;
        if (event.type === 'session-ended' || at === null) return [];
        const passed = this.advance(entry, at);
        return passed === 0 ? [] : [this.relaxation(entry, passed, false, at)];
      }
      case 'queue-positions': {
        const found: LatencyRelaxation[] = [];
        for (const [id, entry] of this.watched) {
          // Not queued any more (placed or ended, perhaps by another instance): nothing to announce.
          if (!event.positions.has(id)) {
            this.watched.delete(id);
            continue;
          }
          if (entry.relaxesAt > now) continue;
          const passed = this.advance(entry, now);
          found.push(this.relaxation(entry, passed, true, now));
          if (entry.relaxesAt === Number.POSITIVE_INFINITY) this.watched.delete(id);
        }
        return found;
      }
      default:
        return [];
    }
  }

  /** Moves `entry` past every relaxation due by `at`; returns how many it passed. */
  private advance(entry: Watched, at: number): number {
    let passed = 0;
    while (entry.relaxesAt <= at && passed < maxStepsPerCheck) {
      passed++;
      entry.relaxesAt = this.capAt(entry.session, entry.relaxesAt).relaxesAt ?? Number.POSITIVE_INFINITY;
    }
    return passed;
  }

  private relaxation(entry: Watched, steps: number, queued: boolean, at: number): LatencyRelaxation {
    return {
      sessionId: entry.session.id,
      queued,
      maxLatencyMs: this.capAt(entry.session, at).maxLatencyMs,
      steps,
      local: entry.local,
    };
  }
}
