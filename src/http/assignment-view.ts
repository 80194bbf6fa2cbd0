/**
 * What a gamer is told about a session: its state, and once assigned the node endpoint, the GPU and a
 * fresh ticket signed with that node's key. Node endpoints and keys are cached per node id and dropped
 * when the node is removed, so answering costs one HMAC, not a store round trip.
 */
import type { SessionPlacement, SessionRecord } from '../sessions/session.js';
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
}

export class SessionViews {
  private readonly options: SessionViewOptions;
  private readonly endpoints = new Map<string, NodeEndpoint>();
  private readonly keys = new Map<string, Buffer>();

  constructor(options: SessionViewOptions) {
    this.options = options;
  }

  forgetNode(nodeId: string): void {
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
    const cached = this.endpoints.get(nodeId);
    if (cached) return cached;
    const node = await this.options.store.getNode(nodeId);
    if (!node) return undefined;
    const endpoint = { id: node.id, host: node.host, port: node.port, protocol: node.protocol };
    this.endpoints.set(nodeId, endpoint);
    return endpoint;
  }

  /**
   * The JSON a gamer receives for a session, in any state. One object shape for every state (fields
   * that do not apply are undefined and left out of the JSON): this runs on every allocation.
   */
  async describe(session: SessionRecord, extra: { position?: number; resumeToken?: string } = {}) {
    const now = this.options.now();
    const live = session.state !== 'ended';
    const placement = session.state === 'assigned' ? session.placement : null;
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
      node: placement ? ((await this.endpoint(placement.nodeId)) ?? { id: placement.nodeId }) : undefined,
      gpu: placement?.gpuIndex,
      gpuModel: placement?.model,
      ticket: placement ? this.ticket(session, placement, issuedAt, expiresAt) : undefined,
      ticketExpiresAt: placement ? new Date(expiresAt * 1000).toISOString() : undefined,
      leaseSeconds: live ? Math.max(0, Math.round((session.leaseExpiresAt - now) / 1000)) : undefined,
      migrations: placement ? session.migrations : undefined,
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
