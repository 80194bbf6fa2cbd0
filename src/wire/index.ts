/**
 * The wire contract between the gateway and its rendering nodes: the telemetry report a node's
 * gpu-probe sends, the session ticket format a node verifies offline, and the ping target it offers. Both sides import it; it
 * imports nothing from the rest of the repository (test/architecture.test.ts checks it).
 */
export { defaultPingPort, pingPortLabel, pingUrlLabel } from './ping-target.js';
export { type GpuTelemetry, maxGpuIndex, type TelemetryReport } from './telemetry-report.js';
export {
  signTicket,
  type TicketClaims,
  TicketError,
  type TicketErrorReason,
  type VerifyTicketOptions,
  verifyTicket,
} from './ticket.js';
