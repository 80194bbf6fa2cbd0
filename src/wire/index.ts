/**
 * The wire contract between the gateway and its rendering nodes: the telemetry report a node's
 * gpu-probe sends, and the session ticket format a node verifies offline. Both sides import it; it
 * imports nothing from the rest of the repository (test/architecture.test.ts checks it).
 */
export { type GpuTelemetry, maxGpuIndex, type TelemetryReport } from './telemetry-report.js';
export {
  signTicket,
  type TicketClaims,
  TicketError,
  type TicketErrorReason,
  type VerifyTicketOptions,
  verifyTicket,
} from './ticket.js';
