/**
 * What a gamer is told about a session: its state, and once assigned the node endpoint, the GPU and a
 * fresh ticket signed with that node's key. Node endpoints and keys are cached per node id, so answering
 * costs one HMAC, not a store round trip; see `SessionViews` for how long a cached endpoint is trusted.
 */
import type { VcaEvent } from '../sessions/events.js';
import type { LatencyCapAt } from '../sessions/latency-watch.js';
import type { SessionPlacement, SessionRecord } from '../sessions/session.js';
import { reportedLatency } from '../sessions/session-request.js';
import type { StateStore } from '../state/state-store.js';
import { deriveNodeKey } from '../tickets/node-key.js';
import { signTicket } from '../tickets/ticket.js';

export interface NodeEndpoint {
  id: string;
  host: string;
  port: number;
  protocol: string;
}

export interface SessionViewOptions {
  store: StateStore;
  masterSecret: string;
  ticketTtlSeconds: number;
  now: () => number;
  /** The latency cap in force for a queued session that reported latencies (absent: none shown). */
  latencyCapAt?: LatencyCapAt | undefined;
}

/**
 * How long an endpoint read from the store is served without reading it again, ms. It bounds how long
 * an instance can send gamers to the host of a node's previous registration when it never heard of the
 * removal (see `SessionViews`); it costs one store read per node and period on a busy instance.
 */
export const endpointTrustMs = 5_000;

interface CachedEndpoint {
  endpoint: NodeEndpoint;
  /** The node's `region` label (null: none); a session placed there reports its latency to it. */
  region: string | null;
  /** The registration the endpoint belongs to (a node removed and registered again gets a new one). */
  registeredAt: number;
  readAt: number;
}

/**
 * A node id outlives its registration: a node drained, removed and registered again under the same id
 * may come back on another host, and any gateway instance sharing the store may have done it. So a
 * cached endpoint is dropped on three signals, each covering what the one before can miss:
 * - `node-removed`, here or relayed from another instance: the usual case, at once;
 * - any other node event (here or relayed) naming another registration (`registeredAt`) than the cached
 *   one: the relayed removal was lost but the new registration's events arrived;
 * - age (`endpointTrustMs`): every relayed message was lost (pub/sub is best effort: a publisher that
 *   crashed or failed to publish, a subscriber that was away, a Redis Cluster failover). Keying by
 *   registration cannot cover this alone (learning the current registration is the store read the cache
 *   saves), nor can clearing on a subscriber reconnect (a lost PUBLISH reconnects nobody); an age
 *   limit bounds the stale window whatever was lost.
 * A node's ticket key depends on its id and the master secret only, so it never goes stale.
 */
export class SessionViews {
  private readonly options: SessionViewOptions;
  private readonly endpoints = new Map<string, CachedEndpoint>();
  private readonly keys = new Map<string, Buffer>();
  /** Bumped by every forget: a store read begun before it must not cache what it read. */
  private forgets = 0;

  constructor(options: SessionViewOptions) {
    this.options = options;
  }

  /** A domain event, from this instance or relayed from another: drops what it makes stale. */
  handleEvent(event: VcaEvent): void {
    switch (event.type) {
      case 'node-removed':
        this.forgetNode(event.node.id);
        return;
      case 'node-state':
      case 'node-drained': {
        const cached = this.endpoints.get(event.node.id);
        if (cached && cached.registeredAt !== event.node.registeredAt) this.forgetNode(event.node.id);
        return;
      }
      default:
        return;
    }
  }

  private forgetNode(nodeId: string): void {
    this.forgets++;
    this.endpoints.delete(nodeId);
    this.keys.delete(nodeId);
  }

  nodeKey(nodeId: string): Buffer {
    let key = this.keys.get(nodeId);
    if (!key) {
      key = deriveNodeKey(this.options.masterSecret, nodeId);
      this.keys.set(nodeId, key);
    }
    return key;
  }

  async endpoint(nodeId: string): Promise<NodeEndpoint | undefined> {
    return (await this.nodeEntry(nodeId))?.endpoint;
  }

  private async nodeEntry(nodeId: string): Promise<CachedEndpoint | undefined> {
    const now = this.options.now();
    const cached = this.endpoints.get(nodeId);
    if (cached && now - cached.readAt < endpointTrustMs) return cached;
    const forgets = this.forgets;
    const node = await this.options.store.getNode(nodeId);
    if (!node) {
      this.endpoints.delete(nodeId);
      return undefined;
    }
    const entry: CachedEndpoint = {
      endpoint: { id: node.id, host: node.host, port: node.port, protocol: node.protocol },
      region: node.labels.region ?? null,
      registeredAt: node.registeredAt,
      readAt: now,
    };
    // A removal heard while reading may postdate the read: answer with it, but do not keep it.
    if (forgets === this.forgets) this.endpoints.set(nodeId, entry);
    return entry;
  }

  /** The latency cap in force for `session` now: only for a queued session that reported latencies. */
  maxLatencyMs(session: SessionRecord): number | null | undefined {
    const { latencyCapAt } = this.options;
    if (session.state !== 'queued' || session.latencies === undefined || !latencyCapAt) return undefined;
    return latencyCapAt(session, this.options.now()).maxLatencyMs;
  }

  /**
   * The JSON a gamer receives for a session, in any state. One object shape for every state (fields
   * that do not apply are undefined and left out of the JSON): this runs on every allocation.
   */
  async describe(
    session: SessionRecord,
    extra: { position?: number; resumeToken?: string; warnings?: readonly string[] } = {},
  ) {
    const now = this.options.now();
    const live = session.state !== 'ended';
    const placement = session.state === 'assigned' ? session.placement : null;
    const node = placement ? await this.nodeEntry(placement.nodeId) : undefined;
    const region = node?.region ?? undefined;
    const issuedAt = Math.floor(now / 1000);
    const expiresAt = issuedAt + this.options.ticketTtlSeconds;
    return {
      sessionId: session.id,
      state: session.state,
      game: session.game,
      resolution: `${session.width}x${session.height}`,
      fps: session.fps,
      resumeToken: extra.resumeToken,
      endReason: live ? undefined : session.endReason,
      queued: session.state === 'queued' ? true : undefined,
      position: session.state === 'queued' ? (extra.position ?? null) : undefined,
      node: placement ? (node?.endpoint ?? { id: placement.nodeId }) : undefined,
      gpu: placement?.gpuIndex,
      gpuModel: placement?.model,
      region,
      // What the gamer reported for the region it plays in (null: it reported latencies, not this one's).
      latencyMs:
        region === undefined || session.latencies === undefined
          ? undefined
          : (reportedLatency(session.latencies, region) ?? null),
      maxLatencyMs: this.maxLatencyMs(session),
      ticket: placement ? this.ticket(session, placement, issuedAt, expiresAt) : undefined,
      ticketExpiresAt: placement ? new Date(expiresAt * 1000).toISOString() : undefined,
      leaseSeconds: live ? Math.max(0, Math.round((session.leaseExpiresAt - now) / 1000)) : undefined,
      migrations: placement ? session.migrations : undefined,
      warnings: extra.warnings && extra.warnings.length > 0 ? extra.warnings : undefined,
    };
  }

  private ticket(
    session: SessionRecord,
    placement: SessionPlacement,
    issuedAt: number,
    expiresAt: number,
  ): string {
    return signTicket(
      {
        v: 1,
        sid: session.id,
        node: placement.nodeId,
        gpu: placement.gpuIndex,
        game: session.game,
        width: session.width,
        height: session.height,
        fps: session.fps,
        iat: issuedAt,
        exp: expiresAt,
      },
      this.nodeKey(placement.nodeId),
    );
  }
}
