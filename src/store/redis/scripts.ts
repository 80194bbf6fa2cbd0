/**
 * The Lua scripts of the Redis store: read from `scripts/<name>.lua`, each prefixed with the shared
 * definitions of `scripts/prelude.lua` it uses (the prelude runs on every call, so each script keeps
 * only the top-level definitions it reaches: see `preludeFor`), and defined on an ioredis client with
 * `defineCommand` (EVALSHA, with ioredis falling back to EVAL once per connection when Redis does not
 * know the script yet).
 *
 * tsc does not copy .lua files to dist/, so the folder is looked up next to this module first and then
 * in `src/store/redis/scripts` of the package root (the folder holding package.json, found upward).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, type Redis } from 'ioredis';

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
  'index-nodes',
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

interface Definition {
  text: string;
  names: string[];
  uses: Set<string>;
}

const identifier = /[A-Za-z_][A-Za-z0-9_]*/g;

/** Lua source without comments and string literals: what is left are the code's identifiers. */
function codeOnly(lua: string): string {
  return lua
    .replace(/--[^\n]*/g, '')
    .replace(/'(?:[^'\\\n]|\\.)*'/g, "''")
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""');
}

/**
 * Splits the prelude into its top-level definitions: each starts at column 0 with `F.<name> =` (or
 * `F.<a>, F.<b> =`) or `function F.<name>(` and runs up to the next one (comments before a definition
 * travel with the one above: harmless). The header before the first one (the settings comment and
 * `local F = {}`) is always kept.
 */
function preludeDefinitions(prelude: string): { header: string; definitions: Definition[] } {
  const parts = prelude.split(/^(?=(?:function\s+)?F\.)/m);
  const header = /^(?:function\s+)?F\./.test(parts[0]!) ? '' : parts.shift()!;
  const definitions = parts.map((text) => {
    const head = /^(?:function\s+F\.([A-Za-z_]\w*)|(F\.[A-Za-z_]\w*(?:\s*,\s*F\.[A-Za-z_]\w*)*)\s*=)/.exec(
      text,
    );
    if (!head) throw new Error(`prelude.lua: cannot read the definition starting ${text.slice(0, 60)}`);
    const names = head[1] ? [head[1]] : head[2]!.split(',').map((name) => name.trim().slice(2));
    const uses = new Set(codeOnly(text).match(identifier) ?? []);
    for (const name of names) uses.delete(name);
    return { text, names, uses };
  });
  return { header, definitions };
}

/**
 * The prelude for one script: the definitions the script's body uses, directly or through other
 * definitions, in prelude order (a definition only uses those above it).
 */
export function preludeFor(prelude: string, body: string): string {
  const { header, definitions } = preludeDefinitions(prelude);
  const needed = new Set(codeOnly(body).match(identifier) ?? []);
  const keep: boolean[] = new Array(definitions.length).fill(false);
  for (let i = definitions.length - 1; i >= 0; i--) {
    const definition = definitions[i]!;
    if (!definition.names.some((name) => needed.has(name))) continue;
    keep[i] = true;
    for (const name of definition.uses) needed.add(name);
  }
  return (
    header +
    definitions
      .filter((_, i) => keep[i])
      .map((definition) => definition.text)
      .join('')
  );
}

/** The full text of every script (prelude included), read once per process. */
export function scriptSources(): ReadonlyMap<ScriptName, string> {
  if (!sources) {
    const dir = findScriptsDir();
    const prelude = readFileSync(path.join(dir, 'prelude.lua'), 'utf8');
    sources = new Map(
      scriptNames.map((name) => {
        const body = readFileSync(path.join(dir, `${name}.lua`), 'utf8');
        return [name, `${preludeFor(prelude, body)}\n-- ${name}.lua\n${body}`];
      }),
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
