/**
 * WebSocket /v1/play: a gamer asks for a session and is kept informed — queued with position updates,
 * assigned with a ticket, told to migrate when its node's drain deadline passes, told when it ended.
 * A dropped socket does not end the session at once: its lease runs for the resume grace, during
 * which `resume` with the session's resume token re-attaches it, on this or any other instance.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { VcaError } from '../errors.js';
import type { RegionDirectory } from '../fleet/region-directory.js';
import type { VcaMetrics } from '../metrics/vca-metrics.js';
import type { EventBus, VcaEvent } from '../sessions/events.js';
import { mayActOn } from '../sessions/session.js';
import { dropUnknownRegions } from '../sessions/session-request.js';
import type { SessionService } from '../sessions/session-service.js';
import type { StateStore } from '../state/state-store.js';
import {
  PlayEndMessageSchema,
  PlayRequestMessageSchema,
  PlayResumeMessageSchema,
  validateBody,
} from './api-schemas.js';
import type { SessionViews } from './assignment-view.js';
import type { Credentials } from './credentials.js';
import type { WsRoute, WsSession } from './handler-api.js';

export interface PlayClient {
  sessionId: string | null;
  lastPosition: number | null;
  /** The latency cap last told with `queued` (undefined: the session reported no latencies). */
  maxLatencyMs: number | null | undefined;
  /** Set when this connection resumed its session: tells our own resume event from another's. */
  resumeId: string | null;
  /** The gamer the socket acts for, proven at the upgrade (`RequestContext.gamer`; null: a front-end). */
  gamer: string | null;
}

export interface PlaySocketsOptions {
  sessions: SessionService;
  events: EventBus;
  store: StateStore;
  views: SessionViews;
  credentials: Credentials;
  metrics: VcaMetrics;
  logger: Logger;
  regions: RegionDirectory;
}

type Socket = WsSession<PlayClient>;

export class PlaySockets {
  private readonly options: PlaySocketsOptions;
  private readonly bySession = new Map<string, Socket>();

  constructor(options: PlaySocketsOptions) {
    this.options = options;
  }

  /** Sessions whose socket is open here: their leases are renewed while it stays open. */
  attachedSessionIds(): string[] {
    return [...this.bySession.keys()];
  }

  get attached(): number {
    return this.bySession.size;
  }

  /** The socket route; who may open it (gamers) is declared where the gateway registers it. */
  route(): WsRoute<PlayClient> {
    const { metrics } = this.options;
    return {
      upgrade: (ctx) => ({
        sessionId: null,
        lastPosition: null,
        maxLatencyMs: undefined,
        resumeId: null,
        gamer: ctx.gamer ?? null,
      }),
      open: () => metrics.websocketConnections.inc(),
      message: (socket, message) => this.onMessage(socket, message),
      close: (socket) => {
        metrics.websocketConnections.dec();
        this.detach(socket);
      },
    };
  }

  /** Domain events -> messages to the sockets they concern. */
  handleEvent(event: VcaEvent): void {
    switch (event.type) {
      case 'session-assigned': {
        const socket = this.bySession.get(event.session.id);
        if (!socket) return;
        socket.data.lastPosition = null;
        void this.sendSession(socket, 'assigned', event.session.id);
        return;
      }
      case 'session-queued': {
        const socket = this.bySession.get(event.session.id);
        if (!socket) return;
        socket.data.lastPosition = event.position;
        socket.data.maxLatencyMs = this.options.views.maxLatencyMs(event.session);
        socket.send({
          type: 'queued',
          sessionId: event.session.id,
          position: event.position,
          maxLatencyMs: socket.data.maxLatencyMs,
        });
        return;
      }
      case 'queue-positions':
        for (const [id, position] of event.positions) {
          const socket = this.bySession.get(id);
          if (!socket || socket.data.lastPosition === position) continue;
          socket.data.lastPosition = position;
          socket.send({ type: 'queued', sessionId: id, position, maxLatencyMs: socket.data.maxLatencyMs });
        }
        return;
      case 'session-migrating': {
        const socket = this.bySession.get(event.session.id);
        socket?.send({
          type: 'migrate',
          sessionId: event.session.id,
          reason: 'node-draining',
          from: { nodeId: event.from.nodeId, gpu: event.from.gpuIndex },
        });
        return;
      }
      case 'session-resumed': {
        // Resumed from another connection, here or on another instance: this one is stale.
        const socket = this.bySession.get(event.session.id);
        if (!socket || socket.data.resumeId === event.resumeId) return;
        this.bySession.delete(event.session.id);
        socket.data.sessionId = null;
        socket.close(4001, 'resumed elsewhere');
        return;
      }
      case 'session-ended': {
        const socket = this.bySession.get(event.session.id);
        if (!socket) return;
        this.bySession.delete(event.session.id);
        socket.data.sessionId = null;
        socket.data.lastPosition = null;
        socket.send({ type: 'ended', sessionId: event.session.id, reason: event.session.endReason });
        return;
      }
      default:
        return;
    }
  }

  /**
   * A queued session's latency policy relaxed (`LatencyWatch`): its client hears the new cap with its
   * position, even when the position stays the same.
   */
  announceLatencyCap(sessionId: string, maxLatencyMs: number | null): void {
    const socket = this.bySession.get(sessionId);
    if (!socket || socket.data.maxLatencyMs === maxLatencyMs) return;
    socket.data.maxLatencyMs = maxLatencyMs;
    socket.send({ type: 'queued', sessionId, position: socket.data.lastPosition, maxLatencyMs });
  }

  private async onMessage(socket: Socket, message: unknown): Promise<void> {
    const type =
      typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined;
    switch (type) {
      case 'request':
        return this.onRequest(socket, validateBody(PlayRequestMessageSchema, message, 'message'));
      case 'resume':
        return this.onResume(socket, validateBody(PlayResumeMessageSchema, message, 'message'));
      case 'end':
        validateBody(PlayEndMessageSchema, message, 'message');
        return this.onEnd(socket);
      default:
        throw new VcaError('VCA_ERR_VALIDATION', 'type: expected "request", "resume" or "end"', {
          field: 'type',
        });
    }
  }

  private async onRequest(
    socket: Socket,
    message: { type: 'request'; wait?: boolean | undefined } & Record<string, unknown>,
  ) {
    if (socket.data.sessionId) {
      throw new VcaError(
        'VCA_ERR_SESSION_EXISTS',
        'This connection already holds a session; send "end" first',
      );
    }
    const { type: _type, wait, ...ask } = message;
    const started = process.hrtime.bigint();
    let outcomeLabel = 'refused';
    let warnings: string[] | undefined;
    try {
      if (ask.latencies !== undefined) {
        const kept = dropUnknownRegions(
          ask.latencies as Readonly<Record<string, number>>,
          await this.options.regions.knownRegions(),
        );
        ask.latencies = kept.latencies;
        warnings = kept.warnings;
      }
      const outcome = await this.options.sessions.request(
        ask as never,
        'websocket',
        wait ?? true,
        socket.data.gamer,
      );
      outcomeLabel = outcome.kind;
      if (socket.closed) return; // the lease runs out unless the gamer resumes from another socket
      this.attach(socket, outcome.session.id);
      if (outcome.kind === 'queued') {
        socket.data.lastPosition = outcome.position;
        socket.data.maxLatencyMs = this.options.views.maxLatencyMs(outcome.session);
        socket.send({
          type: 'queued',
          sessionId: outcome.session.id,
          position: outcome.position,
          maxLatencyMs: socket.data.maxLatencyMs,
          resumeToken: this.options.credentials.resumeToken(outcome.session.id),
          warnings: warnings && warnings.length > 0 ? warnings : undefined,
        });
      } else {
        await this.sendSession(socket, 'assigned', outcome.session.id, warnings);
      }
    } finally {
      this.options.metrics.observeAllocation(outcomeLabel, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private async onResume(socket: Socket, message: { sessionId: string; resumeToken: string }) {
    const { credentials, store, sessions } = this.options;
    if (!credentials.checkResumeToken(message.sessionId, message.resumeToken)) {
      throw new VcaError('VCA_ERR_UNAUTHORIZED', 'The resume token does not match the session');
    }
    const session = await store.getSession(message.sessionId);
    // Another gamer's session is answered as an unknown one, whatever token came with it.
    if (!session || !mayActOn(socket.data.gamer, session))
      throw new VcaError('VCA_ERR_SESSION_NOT_FOUND', `Session "${message.sessionId}" does not exist`);
    if (session.state === 'ended') {
      throw new VcaError('VCA_ERR_SESSION_ENDED', `Session "${session.id}" ended (${session.endReason})`, {
        endReason: session.endReason,
      });
    }
    if (socket.data.sessionId && socket.data.sessionId !== session.id) {
      throw new VcaError('VCA_ERR_SESSION_EXISTS', 'This connection already holds another session');
    }
    await sessions.renewLeases([session.id], 'websocket');
    if (socket.closed) return;
    socket.data.resumeId = randomUUID();
    // Closes the connection that held the session before, on this instance or (relayed) another.
    this.options.events.emit({ type: 'session-resumed', session, resumeId: socket.data.resumeId });
    this.attach(socket, session.id);
    await this.sendSession(socket, session.state === 'assigned' ? 'assigned' : 'queued', session.id);
  }

  private async onEnd(socket: Socket) {
    const id = socket.data.sessionId;
    if (!id) throw new VcaError('VCA_ERR_SESSION_NOT_FOUND', 'This connection holds no session');
    // The session-ended event sends "ended" and detaches.
    await this.options.sessions.end(id, 'released');
  }

  private attach(socket: Socket, sessionId: string) {
    socket.data.sessionId = sessionId;
    this.bySession.set(sessionId, socket);
  }

  private detach(socket: Socket) {
    const id = socket.data.sessionId;
    if (id && this.bySession.get(id) === socket) this.bySession.delete(id);
    socket.data.sessionId = null;
  }

  /** Reads the session now and sends it: the freshest state and a fresh ticket. */
  private async sendSession(
    socket: Socket,
    type: 'assigned' | 'queued',
    sessionId: string,
    warnings?: readonly string[],
  ): Promise<void> {
    const { store, views, credentials } = this.options;
    const session = await store.getSession(sessionId);
    if (!session || socket.closed || socket.data.sessionId !== sessionId) return;
    const position = session.state === 'queued' ? (await store.queuePositions()).get(session.id) : undefined;
    if (position !== undefined) socket.data.lastPosition = position;
    socket.data.maxLatencyMs = views.maxLatencyMs(session);
    const body = await views.describe(session, {
      ...(position === undefined ? {} : { position }),
      resumeToken: credentials.resumeToken(session.id),
      ...(warnings === undefined ? {} : { warnings }),
    });
    socket.send({ ...body, type: session.state === 'assigned' ? 'assigned' : type });
  }
}
