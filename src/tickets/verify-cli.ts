/** Owns the node operator's command line for verifying a ticket and for deriving a node's key. */

import { parseArgs } from 'node:util';
import { TicketError, verifyTicket } from '../wire/index.js';
import { deriveNodeKey } from './node-key.js';

const USAGE = `usage:
  ticket:verify --node-id ID (--node-key HEX | --master-secret S) [--now-ms N] TOKEN|-
  ticket:verify --derive-key --master-secret S --node-id ID

Verifies TOKEN (read from stdin when "-") for node ID: prints its claims as JSON and exits 0, or
prints "invalid ticket: <reason>" and exits 1. --derive-key prints the node's key in hex, the value
to install on that node. Exits 2 on bad arguments.`;

// Well past any real ticket; only guards against piping a stray large file into the verifier.
const MAX_STDIN_BYTES = 64 * 1024;

class UsageError extends Error {}

process.exitCode = await main(process.argv.slice(2));

async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (error) {
    if (error instanceof TicketError) {
      console.error(`invalid ticket: ${error.reason}`);
      return 1;
    }
    // parseArgs rejects unknown or malformed flags with TypeErrors carrying an ERR_PARSE_ARGS_* code.
    const isArgumentError =
      error instanceof UsageError || String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    console.error(`${isArgumentError ? 'error' : 'configuration error'}: ${(error as Error).message}`);
    console.error(USAGE);
    return 2;
  }
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      'node-id': { type: 'string' },
      'node-key': { type: 'string' },
      'master-secret': { type: 'string' },
      'now-ms': { type: 'string' },
      'derive-key': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const nodeId = values['node-id'];
  if (nodeId === undefined || nodeId === '') throw new UsageError('--node-id is required');

  if (values['derive-key']) {
    if (values['master-secret'] === undefined) throw new UsageError('--derive-key needs --master-secret');
    if (values['node-key'] !== undefined || positionals.length > 0) {
      throw new UsageError('--derive-key takes only --master-secret and --node-id');
    }
    console.log(deriveNodeKey(values['master-secret'], nodeId).toString('hex'));
    return 0;
  }

  if ((values['node-key'] === undefined) === (values['master-secret'] === undefined)) {
    throw new UsageError('give exactly one of --node-key or --master-secret');
  }
  if (positionals.length !== 1) throw new UsageError('give exactly one TOKEN, or - to read it from stdin');
  const nodeKey = values['node-key'] !== undefined ? parseNodeKey(values['node-key']) : undefined;
  const now = values['now-ms'] !== undefined ? parseNowMs(values['now-ms']) : Date.now();
  const key = nodeKey ?? deriveNodeKey(values['master-secret']!, nodeId);

  const token = positionals[0] === '-' ? await readStdin() : positionals[0]!;
  const claims = verifyTicket(token, { nodeKey: key, nodeId, now });
  console.log(JSON.stringify(claims));
  return 0;
}

function parseNodeKey(hex: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new UsageError('--node-key must be 64 hex digits (32 bytes)');
  return Buffer.from(hex, 'hex');
}

function parseNowMs(text: string): number {
  if (!/^\d{1,16}$/.test(text)) throw new UsageError('--now-ms must be milliseconds since the epoch');
  return Number(text);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), 'utf8');
    total += buffer.length;
    // Stop reading rather than buffer an unbounded stream that cannot be a ticket anyway.
    if (total > MAX_STDIN_BYTES) throw new TicketError('malformed', 'stdin is larger than any ticket');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}
