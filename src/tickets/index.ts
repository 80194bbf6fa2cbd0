/** The tickets folder's public surface: node keys and signed session tickets a node verifies offline. */

export { deriveNodeKey } from './node-key.js';
export {
  signTicket,
  type TicketClaims,
  TicketError,
  type TicketErrorReason,
  type VerifyTicketOptions,
  verifyTicket,
} from './ticket.js';
