/**
 * Owns the operator's command line for a per-alarm Aodh action URL: the `/v1/hooks/aodh/<token>` URL
 * of one alarm and direction, its token an HMAC under the orchestrator secret (alarm-credentials.ts).
 */

import { parseArgs } from 'node:util';
import { alarmPathToken } from './alarm-credentials.js';

const USAGE = `usage:
  aodh:alarm-url --alarm-id ID [--action UP|DOWN] --base URL
  (the orchestrator secret from $VCA_ORCHESTRATOR_SECRET)

Prints the alarm action URL for alarm ID, e.g.
  https://vca.example/v1/hooks/aodh/a1.<token>?action=DOWN
Set it on the alarm once Aodh gave it its id: openstack alarm update ID --alarm-action <URL>.
Exits 2 on bad arguments.`;

class UsageError extends Error {}

process.exitCode = main(process.argv.slice(2));

function main(argv: string[]): number {
  try {
    const url = run(argv);
    if (url !== undefined) process.stdout.write(`${url}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
}

function run(argv: string[]): string | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'alarm-id': { type: 'string' },
      action: { type: 'string' },
      base: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const alarmId = values['alarm-id'];
  if (!alarmId) throw new UsageError('--alarm-id is required');
  const action = values.action?.trim().toLowerCase() ?? '';
  if (action !== '' && action !== 'up' && action !== 'down') throw new UsageError('--action is UP or DOWN');
  const secret = process.env.VCA_ORCHESTRATOR_SECRET ?? '';
  if (secret === '') throw new UsageError('set VCA_ORCHESTRATOR_SECRET to the gateway orchestrator secret');
  let base: URL;
  try {
    base = new URL(values.base ?? '');
  } catch {
    throw new UsageError('--base must be the gateway URL as Aodh reaches it (https://vca.example)');
  }
  const url = new URL(
    `${base.pathname.replace(/\/+$/, '')}/v1/hooks/aodh/${alarmPathToken(secret, alarmId, action)}`,
    base,
  );
  if (action !== '') url.searchParams.set('action', action.toUpperCase());
  return url.toString();
}
