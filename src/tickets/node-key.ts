/** Owns the derivation of each rendering node's ticket key from the gateway's master secret. */

import { hkdfSync } from 'node:crypto';

const MIN_MASTER_SECRET_BYTES = 32;
const NODE_KEY_BYTES = 32;
// HKDF's info is capped at 1024 bytes; node ids are short names, so a long one is a configuration slip.
const MAX_NODE_ID_BYTES = 256;
const SALT = 'vca ticket v1';
const INFO_PREFIX = 'vca ticket v1 node-key:';

/**
 * Derives the key a node uses to verify its tickets. HKDF is one-way, so a node holding its own key
 * learns neither the master secret nor any other node's key, and so cannot forge tickets for them.
 * The node id sits last in `info` after a fixed prefix, so distinct ids never share an input.
 */
export function deriveNodeKey(masterSecret: string | Buffer, nodeId: string): Buffer {
  const secret = typeof masterSecret === 'string' ? Buffer.from(masterSecret, 'utf8') : masterSecret;
  if (!Buffer.isBuffer(secret) || secret.length < MIN_MASTER_SECRET_BYTES) {
    throw new Error(
      `the ticket master secret must be at least ${MIN_MASTER_SECRET_BYTES} bytes; generate one with \`openssl rand -hex 32\``,
    );
  }
  const nodeIdBytes = typeof nodeId === 'string' ? Buffer.byteLength(nodeId, 'utf8') : 0;
  if (nodeIdBytes === 0 || nodeIdBytes > MAX_NODE_ID_BYTES) {
    throw new Error(`a node id for ticket keys must be 1 to ${MAX_NODE_ID_BYTES} bytes long`);
  }
  return Buffer.from(hkdfSync('sha256', secret, SALT, INFO_PREFIX + nodeId, NODE_KEY_BYTES));
}
