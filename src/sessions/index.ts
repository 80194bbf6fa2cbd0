/** Public surface of sessions: records, requests, the queue, leases and the session service. */
export { DeadlineHeap } from './deadline-heap.js';
export { EventBus, type VcaEvent, type VcaEventListener } from './events.js';
export type {
  EndReason,
  SessionPlacement,
  SessionRecord,
  SessionSpec,
  SessionState,
  SessionTransport,
} from './session.js';
export { sessionDeadline } from './session.js';
export { SessionQueue } from './session-queue.js';
export { buildSessionSpec, type SessionAsk, type SessionSpecContext } from './session-request.js';
export {
  type RequestOutcome,
  type SessionPolicy,
  SessionService,
  type SessionServiceOptions,
} from './session-service.js';
