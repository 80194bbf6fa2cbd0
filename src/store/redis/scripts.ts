/**
 * The Lua scripts of the Redis store: read from `scripts/<name>.lua`, each prefixed with the shared
 * helpers of `scripts/prelude.lua`, and defined on an ioredis client with `defineCommand` (EVALSHA, with
 * ioredis falling back to EVAL once per connection when Redis does not know the script yet).
 *
 * tsc does not copy .lua files to dist/, so the folder is looked up next to this module first and then
 * in `src/store/redis/scripts` of the package root (the folder holding package.json, found upward).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';

export const scriptNames = [
  'register-node',
  'record-telemetry',
  'set-node-state',
  'sweep-stale',
  'remove-node',
  'read-nodes',
  'create-session',
  'place-queued',
  'migrate-session',
  'end-session',
  'renew-leases',
  'expire-sessions',
  'sessions-on-node',
  'queue-positions',
  'remember-webhook',
  'audit',
] as const;

export type ScriptName = (typeof scriptNames)[number];

/** Every script is called as `(numberOfKeys, ...keys, ...args)` and answers a raw Redis reply. */
export type ScriptCall = (...args: Array<string | number>) => Promise<unknown>;

function findScriptsDir(): string {
  const beside = path.join(import.meta.dirname, 'scripts');
  if (existsSync(path.join(beside, 'prelude.lua'))) return beside;
  let dir = import.meta.dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'src', 'store', 'redis', 'scripts');
    const parent = path.dirname(dir);
    if (parent === dir) return beside;
    dir = parent;
  }
}

let sources: ReadonlyMap<ScriptName, string> | undefined;

/** The full text of every script (prelude included), read once per process. */
export function scriptSources(): ReadonlyMap<ScriptName, string> {
  if (!sources) {
    const dir = findScriptsDir();
    const prelude = readFileSync(path.join(dir, 'prelude.lua'), 'utf8');
    sources = new Map(
      scriptNames.map((name) => [
        name,
        `${prelude}\n-- ${name}.lua\n${readFileSync(path.join(dir, `${name}.lua`), 'utf8')}`,
      ]),
    );
  }
  return sources;
}

function commandName(name: ScriptName): string {
  return `vca_${name.replaceAll('-', '_')}`;
}

/** Defines every script on `client` (idempotent) and returns callers by script name. */
export function defineScripts(client: Redis): ReadonlyMap<ScriptName, ScriptCall> {
  const calls = new Map<ScriptName, ScriptCall>();
  const commands = client as unknown as Record<string, ScriptCall | undefined>;
  for (const [name, lua] of scriptSources()) {
    const command = commandName(name);
    if (typeof commands[command] !== 'function') client.defineCommand(command, { lua });
    const call = commands[command]!;
    calls.set(name, (...args) => call.apply(client, args));
  }
  return calls;
}

/** Loads every script into Redis's script cache: a syntax error fails start-up, not the first call. */
export async function loadScripts(client: Redis): Promise<void> {
  await Promise.all([...scriptSources().values()].map((lua) => client.script('LOAD', lua)));
}
