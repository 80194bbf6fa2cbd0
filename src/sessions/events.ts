/**
 * Domain events the gateway turns into WebSocket messages, callbacks and metrics. A tiny typed
 * emitter: listeners run synchronously and a throwing listener cannot break the domain.
 */
import type { NodeView } from '../state/state-store.js';
import type { SessionPlacement, SessionRecord } from './session.js';

export type VcaEvent =
  /** `via`: straight from a request, from the queue, or moved GPU-to-GPU by a migration. */
  | { type: 'session-assigned'; session: SessionRecord; via: 'request' | 'queue' | 'migration' }
  | { type: 'session-queued'; session: SessionRecord; position: number }
  | { type: 'queue-positions'; positions: ReadonlyMap<string, number> }
  | { type: 'session-migrating'; session: SessionRecord; from: SessionPlacement }
  | { type: 'session-ended'; session: SessionRecord }
  /** A gamer re-attached its session from a new connection (`resumeId` names that connection). */
  | { type: 'session-resumed'; session: SessionRecord; resumeId: string }
  | { type: 'node-state'; node: NodeView }
  | { type: 'node-drained'; node: NodeView }
  | { type: 'node-removed'; node: NodeView };

export type VcaEventListener = (event: VcaEvent) => void;

export class EventBus {
  private readonly listeners = new Set<VcaEventListener>();
  private readonly onListenerError: (error: unknown, event: VcaEvent) => void;

  constructor(onListenerError: (error: unknown, event: VcaEvent) => void = () => {}) {
    this.onListenerError = onListenerError;
  }

  subscribe(listener: VcaEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: VcaEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}

/**
 * Carries events between gateway instances that share one store: the instance holding a gamer's
 * WebSocket hears about assignments, migrations and ends decided by any other instance, and every
 * instance hears of node registrations and removals (its per-instance node caches depend on them).
 * Delivery may be best effort: a listener must stay correct when a message never arrives.
 */
export interface EventRelay {
  publish(event: VcaEvent): void;
  /** `listener` receives events published by other instances only. */
  onRemote(listener: VcaEventListener): void;
  close(): Promise<void>;
}

/**
 * Events another instance may need: those about WebSocket sessions (a REST session has no socket
 * anywhere), except an assignment straight from a request, which the requesting instance answers
 * itself; queue positions; and node state changes and removals, which invalidate the node endpoints
 * each instance caches (a node removed and registered again under its id may have a new host).
 */
export function isRelayed(event: VcaEvent): boolean {
  switch (event.type) {
    case 'session-assigned':
      return event.via !== 'request' && event.session.transport === 'websocket';
    case 'session-queued':
    case 'session-migrating':
    case 'session-ended':
    case 'session-resumed':
      return event.session.transport === 'websocket';
    case 'queue-positions':
    case 'node-state':
    case 'node-removed':
      return true;
    default:
      return false;
  }
}
