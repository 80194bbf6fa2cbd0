/**
 * What a gamer is told about a session: its state, and once assigned the node endpoint, the GPU and a
 * fresh ticket signed with that node's key. Node endpoints and keys are cached per node id and dropped
 * when the node is removed, so answering costs one HMAC, not a store round trip.
 */
import type { SessionRecord } from '../sessions/session.js';
import type { ClusterStore } from '../store/store.js';
import { deriveNodeKey } from '../tickets/node-key.js';
import { signTicket } from '../tickets/ticket.js';

export interface NodeEndpoint {
  id: string;
  host: string;
  port: number;
  protocol: string;
}

export interface SessionViewOptions {
  store: ClusterStore;
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
   * The JSON a gamer receives for a session, in any state. Objects are built field by field with a
   * fixed set of keys per state: this runs on every allocation.
   */
  async describe(session: SessionRecord, extra: { position?: number; resumeToken?: string } = {}) {
    const resolution = `${session.width}x${session.height}`;
    const resumeToken = extra.resumeToken;
    if (session.state === 'ended') {
      return {
        sessionId: session.id,
        state: session.state,
        game: session.game,
        resolution,
        fps: session.fps,
        resumeToken,
        endReason: session.endReason,
      };
    }
    const now = this.options.now();
    const leaseSeconds = Math.max(0, Math.round((session.leaseExpiresAt - now) / 1000));
    const placement = session.placement;
    if (session.state === 'queued' || !placement) {
      return {
        sessionId: session.id,
        state: session.state,
        game: session.game,
        resolution,
        fps: session.fps,
        resumeToken,
        queued: true,
        position: extra.position ?? null,
        leaseSeconds,
      };
    }
    const node = await this.endpoint(placement.nodeId);
    const issuedAt = Math.floor(now / 1000);
    const expiresAt = issuedAt + this.options.ticketTtlSeconds;
    const ticket = signTicket(
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
    return {
      sessionId: session.id,
      state: session.state,
      game: session.game,
      resolution,
      fps: session.fps,
      resumeToken,
      node: node ?? { id: placement.nodeId },
      gpu: placement.gpuIndex,
      gpuModel: placement.model,
      ticket,
      ticketExpiresAt: new Date(expiresAt * 1000).toISOString(),
      leaseSeconds,
      migrations: session.migrations,
    };
  }
}
