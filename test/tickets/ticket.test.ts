import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  deriveNodeKey,
  signTicket,
  type TicketClaims,
  TicketError,
  type TicketErrorReason,
  verifyTicket,
} from '../../src/tickets/index.js';

const MASTER = `${'m'.repeat(32)}-test-master-secret`;
const KEY_A = deriveNodeKey(MASTER, 'node-a');
const KEY_B = deriveNodeKey(MASTER, 'node-b');
const IAT = 1_700_000_000;
const EXP = IAT + 60;
const NOW = IAT * 1000 + 5_000;

function claimsFor(node: string, overrides: Partial<TicketClaims> = {}): TicketClaims {
  return {
    v: 1,
    sid: 'sess-1',
    node,
    gpu: 0,
    game: 'quake',
    width: 1920,
    height: 1080,
    fps: 60,
    iat: IAT,
    exp: EXP,
    ...overrides,
  };
}

/** Signs an arbitrary payload per the documented format, bypassing signTicket's own checks. */
function signRaw(payloadText: string, key: Buffer): string {
  const payload = Buffer.from(payloadText, 'utf8').toString('base64url');
  const mac = createHmac('sha256', key).update(`vca1.${payload}`).digest('base64url');
  return `vca1.${payload}.${mac}`;
}

function reasonOf(run: () => unknown): TicketErrorReason | 'no error' {
  try {
    run();
  } catch (error) {
    if (error instanceof TicketError) return error.reason;
    throw error;
  }
  return 'no error';
}

const onA = { nodeKey: KEY_A, nodeId: 'node-a', now: NOW };
const ticketA = signTicket(claimsFor('node-a'), KEY_A);

describe('tickets: round trip', () => {
  it('verifies a ticket it signed and returns the same claims', () => {
    expect(verifyTicket(ticketA, onA)).toEqual(claimsFor('node-a'));
  });

  it('uses the documented vca1.<payload>.<mac> format', () => {
    expect(ticketA).toBe(signRaw(JSON.stringify(claimsFor('node-a')), KEY_A));
  });

  it('signs only the known claims, dropping extra runtime properties', () => {
    const withExtra = { ...claimsFor('node-a'), admin: true } as TicketClaims;
    expect(signTicket(withExtra, KEY_A)).toBe(ticketA);
  });

  it('refuses to sign invalid claims', () => {
    expect(reasonOf(() => signTicket(claimsFor('node-a', { gpu: -1 }), KEY_A))).toBe('malformed');
  });
});

describe('tickets: node binding', () => {
  it("refuses node A's ticket under node B's key", () => {
    expect(reasonOf(() => verifyTicket(ticketA, { ...onA, nodeKey: KEY_B, nodeId: 'node-b' }))).toBe(
      'bad-signature',
    );
  });

  it("refuses node A's ticket presented to node B even with a valid signature", () => {
    expect(reasonOf(() => verifyTicket(ticketA, { ...onA, nodeId: 'node-b' }))).toBe('wrong-node');
  });

  it('derives different keys per node, deterministically', () => {
    expect(KEY_A.length).toBe(32);
    expect(KEY_A.equals(KEY_B)).toBe(false);
    expect(deriveNodeKey(MASTER, 'node-a').equals(KEY_A)).toBe(true);
    expect(deriveNodeKey(Buffer.from(MASTER), 'node-a').equals(KEY_A)).toBe(true);
    expect(deriveNodeKey(`${MASTER}x`, 'node-a').equals(KEY_A)).toBe(false);
  });

  it('rejects a master secret shorter than 32 bytes', () => {
    expect(() => deriveNodeKey('short', 'node-a')).toThrow(/at least 32 bytes/);
    expect(() => deriveNodeKey(Buffer.alloc(31), 'node-a')).toThrow(/at least 32 bytes/);
    expect(() => deriveNodeKey(Buffer.alloc(32), 'node-a')).not.toThrow();
  });

  it('rejects an empty node id', () => {
    expect(() => deriveNodeKey(MASTER, '')).toThrow(/node id/);
  });

  it('rejects a node key of the wrong size as a programming error, not a bad ticket', () => {
    expect(() => verifyTicket(ticketA, { ...onA, nodeKey: Buffer.alloc(16) })).toThrow(TypeError);
  });
});

describe('tickets: tampering and malformed input', () => {
  const [prefix, payload, mac] = ticketA.split('.') as [string, string, string];

  it('refuses a tampered payload', () => {
    const forged = Buffer.from(JSON.stringify(claimsFor('node-a', { gpu: 1 }))).toString('base64url');
    expect(reasonOf(() => verifyTicket(`${prefix}.${forged}.${mac}`, onA))).toBe('bad-signature');
  });

  it('refuses a tampered signature', () => {
    const flipped = (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
    expect(reasonOf(() => verifyTicket(`${prefix}.${payload}.${flipped}`, onA))).toBe('bad-signature');
  });

  it('refuses a non-canonical spelling of the right signature', () => {
    // The MAC's last base64url character carries 2 padding bits; changing them keeps the decoded bytes.
    const last = mac.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1]!;
    const respelled = `${prefix}.${payload}.${mac.slice(0, -1)}${twin}`;
    expect(Buffer.from(mac.slice(0, -1) + twin, 'base64url').equals(Buffer.from(mac, 'base64url'))).toBe(
      true,
    );
    expect(reasonOf(() => verifyTicket(respelled, onA))).toBe('bad-signature');
  });

  it('refuses a truncated ticket', () => {
    expect(reasonOf(() => verifyTicket(ticketA.slice(0, -5), onA))).toBe('bad-signature');
    expect(reasonOf(() => verifyTicket(`${prefix}.${payload}`, onA))).toBe('malformed');
    expect(reasonOf(() => verifyTicket(`${prefix}.${payload}.`, onA))).toBe('malformed');
    expect(reasonOf(() => verifyTicket('', onA))).toBe('malformed');
  });

  it('refuses extra parts', () => {
    expect(reasonOf(() => verifyTicket(`${ticketA}.extra`, onA))).toBe('malformed');
  });

  it('refuses an unknown version prefix', () => {
    expect(reasonOf(() => verifyTicket(`vca2.${payload}.${mac}`, onA))).toBe('malformed');
  });

  it('refuses characters outside base64url', () => {
    expect(reasonOf(() => verifyTicket(`${prefix}.${payload}=.${mac}`, onA))).toBe('malformed');
  });

  it('refuses a huge token before doing any crypto', () => {
    expect(reasonOf(() => verifyTicket(`vca1.${'A'.repeat(4096)}.${mac}`, onA))).toBe('malformed');
  });

  it('refuses a correctly signed payload that is not JSON', () => {
    expect(reasonOf(() => verifyTicket(signRaw('not json {', KEY_A), onA))).toBe('malformed');
  });

  it.each<[string, unknown]>([
    ['an array', [claimsFor('node-a')]],
    ['null', null],
    ['a string gpu', { ...claimsFor('node-a'), gpu: '0' }],
    ['a fractional width', { ...claimsFor('node-a'), width: 1920.5 }],
    ['a zero fps', { ...claimsFor('node-a'), fps: 0 }],
    ['version 2', { ...claimsFor('node-a'), v: 2 }],
    ['an empty sid', { ...claimsFor('node-a'), sid: '' }],
    ['a numeric node', { ...claimsFor('node-a'), node: 7 }],
    ['a missing exp', { ...claimsFor('node-a'), exp: undefined }],
    ['an extra field', { ...claimsFor('node-a'), admin: true }],
    ['exp not after iat', { ...claimsFor('node-a'), exp: IAT }],
  ])('refuses correctly signed claims with %s', (_label, claims) => {
    expect(reasonOf(() => verifyTicket(signRaw(JSON.stringify(claims), KEY_A), onA))).toBe('malformed');
  });
});

describe('tickets: time window', () => {
  const at = (now: number, clockSkewSeconds?: number) =>
    reasonOf(() =>
      verifyTicket(ticketA, { ...onA, now, ...(clockSkewSeconds === undefined ? {} : { clockSkewSeconds }) }),
    );

  it('accepts until exp plus the default 30 s skew, exclusive', () => {
    expect(at((EXP + 30) * 1000 - 1)).toBe('no error');
    expect(at((EXP + 30) * 1000)).toBe('expired');
  });

  it('accepts an iat up to the skew in the future, inclusive', () => {
    expect(at((IAT - 30) * 1000)).toBe('no error');
    expect(at((IAT - 30) * 1000 - 1)).toBe('not-yet-valid');
  });

  it('honours a custom skew, including none at all', () => {
    expect(at(EXP * 1000 - 1, 0)).toBe('no error');
    expect(at(EXP * 1000, 0)).toBe('expired');
    expect(at(IAT * 1000 - 1, 0)).toBe('not-yet-valid');
    expect(at((EXP + 120) * 1000 - 1, 120)).toBe('no error');
  });
});

describe('tickets: verify CLI', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const cli = (args: string[], input?: string) => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/tickets/verify-cli.ts', ...args], {
      cwd: root,
      input: input ?? '',
      encoding: 'utf8',
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  };
  const keyHex = KEY_A.toString('hex');

  it('prints the claims as JSON and exits 0 for a valid ticket', () => {
    const result = cli(['--node-id', 'node-a', '--node-key', keyHex, '--now-ms', String(NOW), ticketA]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(claimsFor('node-a'));
  });

  it('accepts the master secret in place of the node key', () => {
    const result = cli(['--node-id', 'node-a', '--master-secret', MASTER, '--now-ms', String(NOW), ticketA]);
    expect(result.code).toBe(0);
  });

  it('reads the ticket from stdin when TOKEN is -', () => {
    const result = cli(
      ['--node-id', 'node-a', '--node-key', keyHex, '--now-ms', String(NOW), '-'],
      `${ticketA}\n`,
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).sid).toBe('sess-1');
  });

  it('prints the reason and exits 1 for an invalid ticket', () => {
    const expired = cli([
      '--node-id',
      'node-a',
      '--node-key',
      keyHex,
      '--now-ms',
      String(EXP * 2000),
      ticketA,
    ]);
    expect(expired.code).toBe(1);
    expect(expired.stdout).toBe('');
    expect(expired.stderr.trim()).toBe('invalid ticket: expired');
    const wrongNode = cli(['--node-id', 'node-b', '--node-key', KEY_B.toString('hex'), ticketA]);
    expect(wrongNode.code).toBe(1);
    expect(wrongNode.stderr.trim()).toBe('invalid ticket: bad-signature');
  });

  it.each<[string, string[]]>([
    ['no arguments', []],
    ['an unknown flag', ['--node-id', 'node-a', '--node-key', keyHex, '--bogus', ticketA]],
    ['no token', ['--node-id', 'node-a', '--node-key', keyHex]],
    ['both key sources', ['--node-id', 'node-a', '--node-key', keyHex, '--master-secret', MASTER, ticketA]],
    ['a short hex key', ['--node-id', 'node-a', '--node-key', 'abcd', ticketA]],
    ['a bad --now-ms', ['--node-id', 'node-a', '--node-key', keyHex, '--now-ms', 'soon', ticketA]],
    ['a short master secret', ['--derive-key', '--master-secret', 'short', '--node-id', 'node-a']],
  ])('prints usage and exits 2 for %s', (_label, args) => {
    const result = cli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('usage:');
  });

  it('derives the same key as deriveNodeKey', () => {
    const result = cli(['--derive-key', '--master-secret', MASTER, '--node-id', 'node-a']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(keyHex);
  });
});
