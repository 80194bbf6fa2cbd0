/**
 * The Redis store's scripts: how the loader puts them together (dependency order, per-script trimming,
 * the mistakes it refuses), and that the Lua emitted from TypeScript values says what those values say,
 * checked by running it in a real redis-server.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../kit/redis-server.js';
import type { LoadVector } from '../../src/cost/session-cost.js';
import { canTransition, nodeStates } from '../../src/fleet/node-state.js';
import {
  costFields,
  costText,
  gpuHash,
  nodeHash,
  parseCost,
  sessionHash,
} from '../../src/store/redis/hash-layouts.js';
import type { RedisStore } from '../../src/store/redis/index.js';
import { emittedLua } from '../../src/store/redis/lua-emitter.js';
import {
  assembleScript,
  codeOnly,
  type ScriptLibrary,
  scriptLibrary,
} from '../../src/store/redis/script-loader.js';
import {
  latencyScheduleText,
  type ScriptSettings,
  scriptSettingsLayout,
  settingsArgument,
} from '../../src/store/redis/script-settings.js';
import { findScriptsDir, readLibs, scriptNames, scriptSources } from '../../src/store/redis/scripts.js';
import { createTestRedisStore } from './redis-factory.js';
import { createOptions, heavyFormat, readyNode, sessionSpec } from './store-fixtures.js';

/** A library from in-memory lib files (and no emitted blocks unless given). */
function library(libs: Record<string, string>, emitted: Record<string, string> = {}): ScriptLibrary {
  return scriptLibrary({ libs: new Map(Object.entries(libs)), emitted: new Map(Object.entries(emitted)) });
}

/** The `F.<name>` definitions in an assembled script, in order. */
function definedIn(script: string): string[] {
  return [...script.matchAll(/^(?:function\s+F\.(\w+)|F\.(\w+)\s*=)/gm)].map(
    (match) => match[1] ?? match[2]!,
  );
}

const shipped = scriptLibrary({ libs: readLibs(findScriptsDir()), emitted: emittedLua() });

describe('redis scripts: the loader', () => {
  const libs = {
    base: '-- base\n\nF.ONE = 1\n\nfunction F.fmt(value)\n  return tostring(value)\nend\n',
    numbers: [
      '-- numbers',
      '-- requires: base',
      '',
      'F.TWO = F.ONE + 1',
      '-- Comments above a definition go with it.',
      'function F.describe(value)',
      "  return F.fmt(value) .. ' F.unused in a string is not a use' -- nor F.unused in a comment",
      'end',
      'function F.unused()',
      '  return F.TWO',
      'end',
    ].join('\n'),
  };

  it('puts required files first and keeps file order within a file', () => {
    const script = assembleScript(library(libs), 'probe', 'return F.describe(F.TWO)\n');
    expect(definedIn(script)).toEqual(['ONE', 'fmt', 'TWO', 'describe']);
    expect(script.indexOf('-- lib/base.lua')).toBeLessThan(script.indexOf('-- lib/numbers.lua'));
    expect(script).toContain('-- Comments above a definition go with it.\nfunction F.describe');
    expect(script.endsWith('-- probe.lua\nreturn F.describe(F.TWO)\n')).toBe(true);
  });

  it('keeps only what a script reaches, directly or through other definitions', () => {
    expect(definedIn(assembleScript(library(libs), 'probe', 'return F.fmt(2)\n'))).toEqual(['fmt']);
    expect(definedIn(assembleScript(library(libs), 'probe', 'return F.TWO\n'))).toEqual(['ONE', 'TWO']);
    expect(definedIn(assembleScript(library(libs), 'probe', "return 'F.TWO' -- F.ONE\n"))).toEqual([]);
  });

  it('refuses a cycle of requires, naming it', () => {
    const cyclic = {
      a: '-- requires: b\nF.A = 1\n',
      b: '-- requires: c\nF.B = 1\n',
      c: '-- requires: a\nF.C = 1\n',
    };
    expect(() => library(cyclic)).toThrow('form a cycle: a -> b -> c -> a');
  });

  it('refuses a required file that does not exist', () => {
    expect(() => library({ a: '-- requires: base, nowhere\nF.A = 1\n', base: 'F.B = 1\n' })).toThrow(
      'lib/a.lua requires "nowhere", but there is no lib/nowhere.lua',
    );
  });

  it('refuses a use of a definition that no file defines, in a lib or in a script', () => {
    expect(() => library({ a: 'function F.a()\n  return F.missing()\nend\n' })).toThrow(
      'lib/a.lua: F.a uses F.missing, which no file in scripts/lib defines',
    );
    expect(() => assembleScript(library(libs), 'probe', 'return F.nothing\n')).toThrow(
      'probe.lua uses F.nothing, which no file in scripts/lib defines',
    );
  });

  it('refuses a use of a file not required, and of a definition below', () => {
    expect(() => library({ base: 'F.ONE = 1\n', a: 'F.A = F.ONE\n' })).toThrow(
      'lib/a.lua: F.A uses F.ONE of lib/base.lua; add base to its "-- requires:" line',
    );
    expect(() => library({ a: 'F.A = F.B\nF.B = 1\n' })).toThrow('F.A uses F.B, which is defined below it');
  });

  it('refuses code outside a definition and a definition made twice', () => {
    expect(() => library({ a: 'F.A = 1\nlocal cache = {}\n' })).toThrow('lib/a.lua:2: top-level code');
    expect(() => library({ a: 'F.A = 1\n', b: 'F.A = 2\n' })).toThrow('F.A is defined twice');
  });

  it('places emitted blocks, and refuses an unknown or unplaced one', () => {
    const emitted = { answer: '-- emitted\nF.ANSWER = 42\n' };
    const placed = library({ a: '-- emit: answer\n\nF.DOUBLE = F.ANSWER * 2\n' }, emitted);
    expect(definedIn(assembleScript(placed, 'probe', 'return F.DOUBLE\n'))).toEqual(['ANSWER', 'DOUBLE']);
    expect(() => library({ a: '-- emit: question\n' }, emitted)).toThrow(
      '"-- emit: question" names no emitted block',
    );
    expect(() => library({ a: 'F.A = 1\n' }, emitted)).toThrow(
      'the emitted block answer is placed in no lib file',
    );
  });
});

describe('redis scripts: the shipped files', () => {
  it('put every script together, each with every definition it reaches and no other', () => {
    const sources = scriptSources();
    expect([...sources.keys()]).toEqual([...scriptNames]);
    for (const [script, text] of sources) {
      const code = codeOnly(text, script);
      const mentions = new Map<string, number>();
      for (const match of code.matchAll(/(?<![\w.])F\.([A-Za-z_]\w*)/g)) {
        mentions.set(match[1]!, (mentions.get(match[1]!) ?? 0) + 1);
      }
      const defined = new Set(definedIn(text));
      for (const name of mentions.keys()) expect(defined, `${script} uses F.${name}`).toContain(name);
      // Defined once, so a definition some code uses is mentioned at least twice.
      for (const name of defined) expect(mentions.get(name), `${script} keeps F.${name}`).toBeGreaterThan(1);
    }
  });

  it('give a script only what it uses (the prelude runs on every call)', () => {
    const renew = definedIn(scriptSources().get('renew-leases')!);
    expect(renew).not.toContain('pick');
    expect(renew).not.toContain('SETTINGS');
    expect(definedIn(scriptSources().get('sessions-on-node')!)).not.toContain('pick');
    expect(definedIn(scriptSources().get('create-session')!)).toContain('pick');
  });

  it('open every lib file with what it defines and what it requires', () => {
    for (const [name, text] of readLibs(findScriptsDir())) {
      expect(text.startsWith(`-- ${name}: `), `lib/${name}.lua`).toBe(true);
    }
    expect(shipped.libs.map((lib) => lib.name)).toContain('lifecycle');
  });
});

describe('redis scripts: emitted Lua equals the TypeScript values', () => {
  let server: RedisServer;
  let redis: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  /** Runs `body` with the shipped definitions it uses. */
  function run(body: string, keys: string[], args: Array<string | number>): Promise<unknown> {
    return redis.eval(assembleScript(shipped, 'probe', body), keys.length, ...keys, ...args);
  }

  it('allows exactly the node transitions canTransition allows', async () => {
    const body = [
      'local out = {}',
      'for i = 1, #ARGV do',
      '  for j = 1, #ARGV do',
      '    local allowed = F.ALLOWED_TRANSITIONS[ARGV[i]]',
      '    out[#out + 1] = (allowed ~= nil and allowed[ARGV[j]] == true) and 1 or 0',
      '  end',
      'end',
      'return out',
    ].join('\n');
    const answers = (await run(body, [], [...nodeStates])) as number[];
    const expected = nodeStates.flatMap((from) => nodeStates.map((to) => (canTransition(from, to) ? 1 : 0)));
    expect(answers).toEqual(expected);
  });

  it('decodes the settings settingsArgument encodes', async () => {
    const settings: ScriptSettings = {
      gpuCapacity: 900_000,
      encoderCapacity: 850_000,
      vramHeadroom: 0.95,
      temperatureMarginCelsius: 7.5,
      requireTelemetry: true,
      staleAfterMs: 6_000,
      retainEndedMs: 60_000,
      latencyPolicies: [
        { maxLatencyMs: 50, forSeconds: 5 },
        { maxLatencyMs: 100.5, forSeconds: 0.1 },
      ],
      allowUnreportedRegions: true,
      priorityClasses: ['premium', 'standard', 'batch'],
    };
    const decoded = scriptSettingsLayout.map((setting) =>
      setting.kind === 'number'
        ? `F.fmt(F.${setting.lua})`
        : setting.kind === 'flag'
          ? `F.${setting.lua} and 'true' or 'false'`
          : setting.kind === 'latency-schedule'
            ? `F.${setting.lua}, F.fmt(F.latency_cap(5099)), F.fmt(F.latency_cap(4999)), tostring(F.latency_cap(5100))`
            : `F.${setting.lua}`,
    );
    const answers = (await run(
      `return { ${decoded.join(', ')} }`,
      [],
      [settingsArgument(settings)],
    )) as unknown[];
    // The latency schedule answers four values: its text and the cap in force at three ages.
    const at = scriptSettingsLayout.findIndex((setting) => setting.kind === 'latency-schedule');
    const schedule = answers.splice(at, 4);
    expect(schedule).toEqual([latencyScheduleText(settings.latencyPolicies), '100.5', '50', 'nil']);
    answers.splice(at, 0, settings.latencyPolicies);
    const values = scriptSettingsLayout.map((setting, i) =>
      setting.kind === 'number'
        ? Number(answers[i])
        : setting.kind === 'flag'
          ? answers[i] === 'true'
          : answers[i],
    );
    expect(values).toEqual(scriptSettingsLayout.map((setting) => settings[setting.name]));
  });

  it('reads and writes the cost text as parseCost and costText do', async () => {
    const cost: LoadVector = { gpu: 123_456, encoder: 7, vramMiB: 4_096, encoderSessions: 1 };
    const fields = costFields.map((field) => `F.fmt(cost.${field})`).join(', ');
    const body = `local cost = F.parse_cost(ARGV[1])\nreturn { F.cost_text(cost), ${fields} }`;
    const [text, ...values] = (await run(body, [], [costText(cost)])) as string[];
    expect(parseCost(text!)).toEqual(cost);
    expect(values.map(Number)).toEqual(costFields.map((field) => cost[field]));
  });

  describe('on a store', () => {
    let store: RedisStore;

    beforeAll(async () => {
      store = await createTestRedisStore(server.url);
      await readyNode(store, 'node-a', [{ model: 'L4', count: 1 }]);
      await store.createSession(sessionSpec('held', heavyFormat), createOptions(1));
      await store.createSession(sessionSpec('waiting', heavyFormat, { region: 'eu' }), createOptions(2));
      await store.createSession(sessionSpec('done'), createOptions(3));
      await store.endSession('done', 'released', 4);
    });

    afterAll(async () => {
      await store?.close();
    });

    const namesOf = (layout: { fields: ReadonlyArray<{ name: string }> }) =>
      layout.fields.map((field) => field.name).sort();

    it('keeps node, GPU and session hashes of exactly the layouts’ fields', async () => {
      const base = store.keys.base;
      expect((await redis.hkeys(`${base}:node:node-a`)).sort()).toEqual(namesOf(nodeHash));
      expect((await redis.hkeys(`${base}:gpu:node-a#0`)).sort()).toEqual(namesOf(gpuHash));
      for (const id of ['held', 'waiting', 'done']) {
        expect((await redis.hkeys(store.keys.session(id))).sort(), id).toEqual(namesOf(sessionHash));
      }
    });

    it('answers a session from a script as getSession reads it from the hash', async () => {
      const [held] = await store.sessionsOnNode('node-a');
      expect(held?.placement?.nodeId).toBe('node-a');
      expect(held).toEqual(await store.getSession('held'));
      const ended = await store.endSession('held', 'released', 5);
      expect(ended?.session).toEqual(await store.getSession('held'));
    });
  });
});
