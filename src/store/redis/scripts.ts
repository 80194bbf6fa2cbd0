/**
 * The Lua scripts of the Redis store: each `scripts/<name>.lua` with the definitions of
 * `scripts/lib/*.lua` it uses (put together by script-loader.ts, with the blocks lua-emitter.ts
 * generates from TypeScript values), defined on an ioredis client with `defineCommand` (EVALSHA, with
 * ioredis falling back to EVAL once per connection when Redis does not know the script yet).
 *
 * tsc does not copy .lua files to dist/, so the folder is looked up next to this module first and then
 * in `src/store/redis/scripts` of the package root (the folder holding package.json, found upward).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, type Redis } from 'ioredis';
import { emittedLua } from './lua-emitter.js';
import { assembleScript, scriptLibrary } from './script-loader.js';

export const scriptNames = [
  'register-node',
  'register-nodes',
  'record-telemetry',
  'set-node-state',
  'drain-nodes',
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
  'claim-outbox',
  'complete-outbox',
  'retry-outbox',
  'audit',
  'index-nodes',
  'merge-cost-evidence',
  'reset-cost-evidence',
] as const;

export type ScriptName = (typeof scriptNames)[number];

/** Every script is called as `(numberOfKeys, ...keys, ...args)` and answers a raw Redis reply. */
export type ScriptCall = (...args: Array<string | number>) => Promise<unknown>;

/** The folder of the scripts: it holds `lib/` and one .lua file per script. */
export function findScriptsDir(): string {
  const beside = path.join(import.meta.dirname, 'scripts');
  if (existsSync(path.join(beside, 'lib'))) return beside;
  let dir = import.meta.dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'src', 'store', 'redis', 'scripts');
    const parent = path.dirname(dir);
    if (parent === dir) return beside;
    dir = parent;
  }
}

/** The lib files of `dir`/lib by name (`lib/<name>.lua` as `<name>`). */
export function readLibs(dir: string): Map<string, string> {
  const libDir = path.join(dir, 'lib');
  return new Map(
    readdirSync(libDir)
      .filter((file) => file.endsWith('.lua'))
      .sort()
      .map((file) => [file.slice(0, -'.lua'.length), readFileSync(path.join(libDir, file), 'utf8')]),
  );
}

let sources: ReadonlyMap<ScriptName, string> | undefined;

/** The full text of every script (its lib definitions included), put together once per process. */
export function scriptSources(): ReadonlyMap<ScriptName, string> {
  if (!sources) {
    const dir = findScriptsDir();
    const library = scriptLibrary({ libs: readLibs(dir), emitted: emittedLua() });
    sources = new Map(
      scriptNames.map((name) => [
        name,
        assembleScript(library, name, readFileSync(path.join(dir, `${name}.lua`), 'utf8')),
      ]),
    );
  }
  return sources;
}

function commandName(name: ScriptName): string {
  return `vca_${name.replaceAll('-', '_')}`;
}

/** Defines every script on `client` (idempotent) and returns callers by script name. */
export function defineScripts(client: Redis | Cluster): ReadonlyMap<ScriptName, ScriptCall> {
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

/**
 * Loads every script into Redis's script cache (on every master of a Cluster): a syntax error fails
 * start-up, not the first call.
 */
export async function loadScripts(client: Redis | Cluster): Promise<void> {
  const servers = client instanceof Cluster ? client.nodes('master') : [client];
  await Promise.all(
    servers.flatMap((server) => [...scriptSources().values()].map((lua) => server.script('LOAD', lua))),
  );
}
