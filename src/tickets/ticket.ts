/** Session tickets as the gateway signs them: the wire contract's ticket format (src/wire/ticket.ts). */
export { signTicket } from '../wire/index.js';
