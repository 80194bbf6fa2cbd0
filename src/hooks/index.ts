/** The orchestrator-webhook parsing layer: bodies in, normalized and validated `OrchestrationEvent`s out. */
export type {
  AdjustmentType,
  AlarmInfo,
  CapacityChange,
  OrchestrationAction,
  OrchestrationEvent,
  OrchestrationSource,
} from './orchestration-event.js';
export { parseAodhAlarm } from './parse-aodh.js';
export { parseContextualize } from './parse-contextualize.js';
export { parseNotifications } from './parse-notifications.js';
export type {
  AodhAlarmBody,
  CeilometerEvent,
  ContextualizeBody,
  ContextualizeScaleDown,
  ContextualizeScaleUp,
  NodeReference,
  NodeRegistration,
  NotificationsBody,
  OsloEnvelope,
  OsloNotification,
} from './schemas.js';
export {
  AodhAlarmBodySchema,
  CeilometerEventBatchSchema,
  CeilometerEventSchema,
  ContextualizeBodySchema,
  ContextualizeScaleDownSchema,
  ContextualizeScaleUpSchema,
  GpuSpecSchema,
  NodeRegistrationSchema,
  NotificationsBodySchema,
  OsloEnvelopeSchema,
  OsloNotificationSchema,
} from './schemas.js';
