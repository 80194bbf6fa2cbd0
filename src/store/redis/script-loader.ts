/**
 * Puts the Redis scripts together: each operation script (`scripts/<name>.lua`) is prefixed with the
 * definitions of the lib files (`scripts/lib/<lib>.lua`) it uses, directly or through other
 * definitions, and with nothing else. The prefix runs on every call (Redis runs a script's whole chunk
 * each time), so a script pays only for what it uses; bench:redis measures that cost.
 *
 * A lib file holds definitions only: each starts at column 0 with `F.<name> =` (or `F.<a>, F.<b> =`)
 * or `function F.<name>(` and runs until the next one; comment lines directly above a definition go
 * with it. Every definition is a field of the one local table F, not a local of its own: a Lua 5.1
 * closure looks up each local it captures in the list of captured locals, so with one local per
 * definition the ~70 definitions a script runs cost it ~15 us per call just to create; with F ~3 us.
 * Its header (the comments before the first definition) says what it defines, which KEYS and ARGV it
 * relies on and, in a line `-- requires: a, b`, which lib files it uses. A definition may use the
 * definitions above it in its own file and those of the files it requires; files come out in
 * dependency order, definitions in file order, so a value such as `F.GPU_CAP = tonumber(...)` always
 * finds what it reads. A line `-- emit: <block>` is replaced by that block of Lua generated from
 * TypeScript values (lua-emitter.ts).
 *
 * Mistakes fail when the scripts are put together, with the file named: a missing lib file, a cycle of
 * requires, a use of a definition that does not exist, lives in a file not required or sits below, top
 * level code outside a definition, an unknown or unplaced emitted block.
 */

export interface ScriptLibrarySources {
  /** The lib files' text by name (`lib/<name>.lua` as `<name>`). */
  readonly libs: ReadonlyMap<string, string>;
  /** Emitted Lua by block name. */
  readonly emitted: ReadonlyMap<string, string>;
}

interface Definition {
  readonly lib: string;
  /** Position in its lib file. */
  readonly position: number;
  readonly names: readonly string[];
  readonly text: string;
  readonly uses: readonly string[];
}

interface Lib {
  readonly name: string;
  readonly requires: readonly string[];
  readonly definitions: readonly Definition[];
}

export interface ScriptLibrary {
  /** In dependency order: a lib comes after every lib it requires. */
  readonly libs: readonly Lib[];
  readonly definitions: ReadonlyMap<string, Definition>;
}

const definitionStart =
  /^(?:function\s+F\.([A-Za-z_]\w*)\s*\(|(F\.[A-Za-z_]\w*(?:\s*,\s*F\.[A-Za-z_]\w*)*)\s*=(?!=))/;
/** Top-level lines allowed besides comments and definition starts: the closing line of a definition. */
const closingLine = /^(?:end\b|\}|\))/;
const requiresLine = /^--\s*requires:(.*)$/;
const emitLine = /^--\s*emit:\s*(\S*)\s*$/;
const reference = /(?<![\w.])F\.([A-Za-z_]\w*)/g;

function fail(message: string): never {
  throw new Error(`Redis scripts: ${message}`);
}

/**
 * Lua source without comments and string literals (each string becomes ''): what is left are the
 * code's identifiers. Long brackets (`[[...]]`, `--[[...]]`) are refused: nothing here needs them.
 */
export function codeOnly(lua: string, file: string): string {
  const parts: string[] = [];
  let from = 0;
  let i = 0;
  while (i < lua.length) {
    const character = lua[i]!;
    if (character === '-' && lua[i + 1] === '-') {
      if (/^--\[=*\[/.test(lua.slice(i, i + 40))) fail(`${file}: long comments (--[[ ]]) are not supported`);
      parts.push(lua.slice(from, i));
      const end = lua.indexOf('\n', i);
      i = end < 0 ? lua.length : end;
      from = i;
    } else if (character === "'" || character === '"') {
      parts.push(lua.slice(from, i), "''");
      let j = i + 1;
      while (j < lua.length && lua[j] !== character) {
        if (lua[j] === '\n') fail(`${file}: a string literal runs past the end of its line`);
        j += lua[j] === '\\' ? 2 : 1;
      }
      i = j + 1;
      from = i;
    } else if (character === '[' && /^\[=*\[/.test(lua.slice(i, i + 40))) {
      fail(`${file}: long strings ([[ ]]) are not supported`);
    } else {
      i++;
    }
  }
  parts.push(lua.slice(from));
  return parts.join('');
}

function referencesIn(lua: string, file: string): Set<string> {
  return new Set([...codeOnly(lua, file).matchAll(reference)].map((match) => match[1]!));
}

function isComment(line: string): boolean {
  return line.startsWith('--');
}

/** One lib file: its requires and definitions, emitted blocks placed. */
function parseLib(name: string, source: string, emitted: ReadonlyMap<string, string>, placed: Set<string>) {
  const file = `lib/${name}.lua`;
  const lines: string[] = [];
  for (const line of source.split('\n')) {
    const emit = emitLine.exec(line);
    if (!emit) {
      lines.push(line);
      continue;
    }
    const block = emitted.get(emit[1]!);
    if (block === undefined) {
      fail(
        `${file}: "-- emit: ${emit[1]}" names no emitted block (known: ${[...emitted.keys()].join(', ')})`,
      );
    }
    if (placed.has(emit[1]!)) fail(`${file}: the emitted block ${emit[1]} is placed twice`);
    placed.add(emit[1]!);
    lines.push(...block.replace(/\n$/, '').split('\n'));
  }
  const starts: number[] = [];
  for (const [i, line] of lines.entries()) {
    if (definitionStart.test(line)) starts.push(i);
    else if (line.trim() !== '' && !/^\s/.test(line) && !isComment(line) && !closingLine.test(line)) {
      fail(`${file}:${i + 1}: top-level code outside a definition ("${line.slice(0, 60)}")`);
    }
  }
  // Comment lines directly above a definition belong to it.
  const from = starts.map((start) => {
    let at = start;
    while (at > 0 && isComment(lines[at - 1]!)) at--;
    return at;
  });
  const header = lines.slice(0, starts[0] ?? lines.length);
  for (const [i, line] of header.entries()) {
    if (line.trim() !== '' && !isComment(line)) fail(`${file}:${i + 1}: code before the first definition`);
  }
  for (let i = header.length; i < lines.length; i++) {
    if (requiresLine.test(lines[i]!)) fail(`${file}:${i + 1}: "-- requires:" belongs in the header`);
  }
  const requires = header
    .map((line) => requiresLine.exec(line)?.[1])
    .filter((list) => list !== undefined)
    .flatMap((list) => list.split(','))
    .map((item) => item.trim())
    .filter((item) => item !== '');
  for (const required of requires) {
    if (!/^[a-z0-9-]+$/.test(required)) fail(`${file}: "-- requires:" names "${required}", not a lib name`);
  }
  const definitions = starts.map((start, position): Definition => {
    const text = `${lines.slice(from[position], from[position + 1] ?? lines.length).join('\n')}\n`;
    const head = definitionStart.exec(lines[start]!)!;
    const names = head[1] ? [head[1]] : head[2]!.split(',').map((item) => item.trim().slice(2));
    const uses = [...referencesIn(text, file)].filter((used) => !names.includes(used));
    return { lib: name, position, names, text, uses };
  });
  return { name, requires, definitions };
}

/** Dependency order of the libs (required first); a cycle or a missing lib fails. */
function dependencyOrder(libs: ReadonlyMap<string, Lib>): Lib[] {
  const order: Lib[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (lib: Lib, path: readonly string[]) => {
    const seen = state.get(lib.name);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...path.slice(path.indexOf(lib.name)), lib.name];
      fail(`the "-- requires:" lines of scripts/lib form a cycle: ${cycle.join(' -> ')}`);
    }
    state.set(lib.name, 'visiting');
    for (const required of lib.requires) {
      const next = libs.get(required);
      if (!next) fail(`lib/${lib.name}.lua requires "${required}", but there is no lib/${required}.lua`);
      visit(next, [...path, lib.name]);
    }
    state.set(lib.name, 'done');
    order.push(lib);
  };
  for (const name of [...libs.keys()].sort()) visit(libs.get(name)!, []);
  return order;
}

/** Reads and checks every lib file once; `assembleScript` then builds each script from the result. */
export function scriptLibrary(sources: ScriptLibrarySources): ScriptLibrary {
  const placed = new Set<string>();
  const parsed = new Map<string, Lib>();
  for (const [name, source] of sources.libs)
    parsed.set(name, parseLib(name, source, sources.emitted, placed));
  for (const block of sources.emitted.keys()) {
    if (!placed.has(block)) {
      fail(
        `the emitted block ${block} is placed in no lib file; add "-- emit: ${block}" to the one it belongs in`,
      );
    }
  }
  const libs = dependencyOrder(parsed);
  const definitions = new Map<string, Definition>();
  for (const lib of libs) {
    for (const definition of lib.definitions) {
      for (const name of definition.names) {
        const other = definitions.get(name);
        if (other) fail(`F.${name} is defined twice: in lib/${other.lib}.lua and lib/${lib.name}.lua`);
        definitions.set(name, definition);
      }
    }
  }
  for (const lib of libs) {
    for (const definition of lib.definitions) {
      const where = `lib/${lib.name}.lua: F.${definition.names[0]}`;
      for (const used of definition.uses) {
        const target = definitions.get(used);
        if (!target) fail(`${where} uses F.${used}, which no file in scripts/lib defines`);
        if (target.lib === lib.name && target.position > definition.position) {
          fail(`${where} uses F.${used}, which is defined below it; move F.${used} above`);
        }
        if (target.lib !== lib.name && !lib.requires.includes(target.lib)) {
          fail(
            `${where} uses F.${used} of lib/${target.lib}.lua; add ${target.lib} to its "-- requires:" line`,
          );
        }
      }
    }
  }
  return { libs, definitions };
}

/**
 * The text Redis runs for one script: `local F = {}`, the definitions the body uses (directly or
 * through other definitions) in dependency order, then the body.
 */
export function assembleScript(library: ScriptLibrary, name: string, body: string): string {
  const file = `${name}.lua`;
  if (body.split('\n').some((line) => emitLine.test(line))) {
    fail(`${file}: "-- emit:" lines belong in lib files`);
  }
  const keep = new Set<Definition>();
  const pending = [...referencesIn(body, file)];
  for (const used of pending) {
    if (!library.definitions.has(used)) fail(`${file} uses F.${used}, which no file in scripts/lib defines`);
  }
  while (pending.length > 0) {
    const definition = library.definitions.get(pending.pop()!)!;
    if (keep.has(definition)) continue;
    keep.add(definition);
    pending.push(...definition.uses);
  }
  let prelude = `-- ${file} with the definitions of scripts/lib it uses (script-loader.ts)\nlocal F = {}\n`;
  for (const lib of library.libs) {
    const kept = lib.definitions.filter((definition) => keep.has(definition));
    if (kept.length > 0)
      prelude += `-- lib/${lib.name}.lua\n${kept.map((definition) => definition.text).join('')}`;
  }
  return `${prelude}\n-- ${file}\n${body}`;
}

/**
 * The scripts as one Redis function library (Redis 7 `FUNCTION LOAD`): every definition of scripts/lib
 * runs once, when Redis loads the library, instead of on every call as an EVAL script's prelude does
 * (~80 closures and the settings decoded: about half of a short script's Redis time). Each script
 * becomes the function `<library>_<name with _ for ->` around its unchanged body.
 *
 * The bodies and the lib files keep reading `KEYS` and `ARGV`: they are two locals of the library that
 * each call sets to its own keys and arguments. The value definitions (`F.X = ...`: the settings decoded
 * from ARGV[1], the key names built from KEYS[1], constants) depend on nothing else, so they run again
 * only when a call brings another KEYS[1], ARGV[1] or number of keys than the call before (another key
 * prefix or settings: another store on the same Redis); every store call passes all the fixed keys and
 * the settings, so the values a call sees are always its own.
 */
export function assembleLibrary(
  library: ScriptLibrary,
  libraryName: string,
  bodies: ReadonlyMap<string, string>,
): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(libraryName)) fail(`"${libraryName}" is not a function library name`);
  const functions: string[] = [];
  const values: string[] = [];
  for (const lib of library.libs) {
    for (const definition of lib.definitions) {
      const text = definition.text;
      const head = text.split('\n').find((line) => !isComment(line)) ?? '';
      (head.startsWith('function ') ? functions : values).push(text);
    }
  }
  let out = `#!lua name=${libraryName}\n-- The store's scripts as one function library (script-loader.ts assembleLibrary).\n`;
  out += 'local KEYS, ARGV\nlocal F = {}\n';
  out += functions.join('');
  out += `local function load_values()\n${values.join('')}end\n`;
  out += 'local loaded_key, loaded_settings, loaded_count\n';
  out += 'local function enter(keys, args)\n  KEYS, ARGV = keys, args\n';
  out += '  if keys[1] ~= loaded_key or args[1] ~= loaded_settings or #keys ~= loaded_count then\n';
  out +=
    '    load_values()\n    loaded_key, loaded_settings, loaded_count = keys[1], args[1], #keys\n  end\nend\n';
  for (const [name, body] of bodies) {
    const file = `${name}.lua`;
    if (body.split('\n').some((line) => emitLine.test(line)))
      fail(`${file}: "-- emit:" lines belong in lib files`);
    for (const used of referencesIn(body, file)) {
      if (!library.definitions.has(used))
        fail(`${file} uses F.${used}, which no file in scripts/lib defines`);
    }
    const local = `script_${name.replaceAll('-', '_')}`;
    out += `\n-- ${file}\nlocal function ${local}()\n${body.replace(/\n$/, '')}\nend\n`;
    out += `redis.register_function('${functionName(libraryName, name)}', function(keys, args)\n  enter(keys, args)\n  return ${local}()\nend)\n`;
  }
  return out;
}

/** The name a script's function has in the library `libraryName`. */
export function functionName(libraryName: string, script: string): string {
  return `${libraryName}_${script.replaceAll('-', '_')}`;
}
