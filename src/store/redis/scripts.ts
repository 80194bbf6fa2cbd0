/**
 * The Lua scripts of the Redis store: every `scripts/<name>.lua` with the definitions of
 * `scripts/lib/*.lua` (put together by script-loader.ts, with the blocks lua-emitter.ts generates from
 * TypeScript values) in one Redis function library, `vca_<hash of its text>`, loaded with
 * `FUNCTION LOAD` and called with `FCALL` (one round trip per operation, as EVALSHA; the lib
 * definitions run once per load instead of on every call). The hash in the name lets two versions of
 * the gateway share a Redis during a rolling upgrade. A Redis that lost its functions (restarted
 * without persistence, a new Cluster master) answers "Function not found": the library is loaded
 * again and the call retried once.
 *
 * `scriptSources()` keeps each script as a self-contained EVAL text (its prelude and body): the tests
 * probe lib definitions with it.
 *
 * tsc does not copy .lua files to dist/, so the folder is looked up next to this module first and then
 * in `src/store/redis/scripts` of the package root (the folder holding package.json, found upward).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, type Redis } from 'ioredis';
import { emittedLua } from './lua-emitter.js';
import { assembleLibrary, assembleScript, functionName, scriptLibrary } from './script-loader.js';

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

let functions: { name: string; source: string } | undefined;

/** The function library of every script, and its name, put together once per process. */
export function functionLibrary(): { readonly name: string; readonly source: string } {
  if (!functions) {
    const dir = findScriptsDir();
    const library = scriptLibrary({ libs: readLibs(dir), emitted: emittedLua() });
    const bodies = new Map(
      scriptNames.map((name) => [name, readFileSync(path.join(dir, `${name}.lua`), 'utf8')] as const),
    );
    const probe = assembleLibrary(library, 'vca', bodies);
    const name = `vca_${createHash('sha1').update(probe).digest('hex').slice(0, 16)}`;
    functions = { name, source: assembleLibrary(library, name, bodies) };
  }
  return functions;
}

function isFunctionMissing(error: unknown): boolean {
  return error instanceof Error && error.message.includes('Function not found');
}

/** Callers by script name: one FCALL each, the library loaded again once if Redis lost it. */
export function defineScripts(client: Redis | Cluster): ReadonlyMap<ScriptName, ScriptCall> {
  const library = functionLibrary();
  const calls = new Map<ScriptName, ScriptCall>();
  for (const name of scriptNames) {
    const fn = functionName(library.name, name);
    const call = (args: Array<string | number>) => client.call('fcall', fn, ...args);
    calls.set(name, async (...args) => {
      try {
        return await call(args);
      } catch (error) {
        if (!isFunctionMissing(error)) throw error;
        await loadScripts(client);
        return call(args);
      }
    });
  }
  return calls;
}

/**
 * Loads the function library into Redis (on every master of a Cluster; replicas get it by
 * replication): a syntax error fails start-up, not the first call. REPLACE makes it idempotent.
 */
export async function loadScripts(client: Redis | Cluster): Promise<void> {
  const servers = client instanceof Cluster ? client.nodes('master') : [client];
  const { source } = functionLibrary();
  await Promise.all(servers.map((server) => server.call('FUNCTION', 'LOAD', 'REPLACE', source)));
}
