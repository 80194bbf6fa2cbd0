/** Sessions as the store keeps them: what was asked for, where it runs, and its lease. */
import type { LoadVector } from '../cost/session-cost.js';

export type SessionState = 'queued' | 'assigned' | 'ended';
export type SessionTransport = 'rest' | 'websocket';

export type EndReason =
  | 'released'
  | 'client-closed'
  | 'lease-expired'
  | 'queue-timeout'
  | 'cancelled'
  | 'node-reported-ended'
  | 'node-removed'
  | 'shutdown';

/** What a session needs, fixed at creation. `costs` holds its cost on each GPU model that may host it. */
export interface SessionSpec {
  id: string;
  game: string;
  width: number;
  height: number;
  fps: number;
  priority: string;
  transport: SessionTransport;
  region?: string | undefined;
  labels?: Readonly<Record<string, string>> | undefined;
  costs: Readonly<Record<string, LoadVector>>;
  /**
   * The gamer the session belongs to: the `sub` of the identity token it was asked for with; null (or
   * absent) when a front-end asked with a static gamer token.
   */
  owner?: string | null | undefined;
  /**
   * Round-trip time the gamer measured to each region, ms: the session is placed only in regions the
   * latency policies allow at its age, lowest latency first (src/placement/latency-policy.ts).
   * Absent (or empty): any region, as a request without latencies.
   */
  latencies?: Readonly<Record<string, number>> | undefined;
}

export interface SessionPlacement {
  nodeId: string;
  gpuIndex: number;
  model: string;
  cost: LoadVector;
}

export interface SessionRecord extends SessionSpec {
  owner: string | null;
  state: SessionState;
  createdAt: number;
  queuedAt: number | null;
  /** When a queued session gives up waiting, ms. */
  queueDeadline: number | null;
  assignedAt: number | null;
  endedAt: number | null;
  endReason: EndReason | null;
  placement: SessionPlacement | null;
  /** The session ends if its lease is not renewed before this instant, ms. */
  leaseExpiresAt: number;
  migrations: number;
}

/**
 * Whether `gamer` may read, renew, resume or end `session`: a gamer (the `sub` of a verified identity
 * token) only its own sessions; null — a front-end's static token, which acts for every gamer — any.
 * Callers answer a session `gamer` may not act on as unknown, so its existence is not revealed.
 */
export function mayActOn(gamer: string | null, session: SessionRecord): boolean {
  return gamer === null || session.owner === gamer;
}

/** How long an ended session stays readable (a look-up answers how it ended) unless configured, ms. */
export const defaultRetainEndedMs = 60_000;

/** The instant a live session ends unless something happens: lease expiry or queue timeout. */
export function sessionDeadline(session: SessionRecord): number {
  return session.state === 'queued' && session.queueDeadline !== null
    ? Math.min(session.leaseExpiresAt, session.queueDeadline)
    : session.leaseExpiresAt;
}

/** The record of a session just asked for: not yet placed or queued, its lease running. */
export function newSessionRecord(spec: SessionSpec, now: number, leaseExpiresAt: number): SessionRecord {
  // Field by field (not a spread): one stable object shape on the allocation path.
  return {
    id: spec.id,
    game: spec.game,
    width: spec.width,
    height: spec.height,
    fps: spec.fps,
    priority: spec.priority,
    transport: spec.transport,
    region: spec.region,
    labels: spec.labels,
    costs: spec.costs,
    // An owner of '' is no owner, as the Redis scripts read it (lib/sessions.lua: session_owner).
    owner: spec.owner || null,
    latencies: spec.latencies,
    state: 'queued',
    createdAt: now,
    queuedAt: null,
    queueDeadline: null,
    assignedAt: null,
    endedAt: null,
    endReason: null,
    placement: null,
    leaseExpiresAt,
    migrations: 0,
  };
}
