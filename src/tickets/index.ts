/**
 * The tickets folder's public surface: node keys, and the signed session tickets a node verifies
 * offline (their format belongs to the wire contract, src/wire).
 */

export {
  signTicket,
  type TicketClaims,
  TicketError,
  type TicketErrorReason,
  verifyTicket,
} from '../wire/index.js';
export { deriveNodeKey } from './node-key.js';
