/**
 * Test support for the webhook fuzz test: seeded mutations of real webhook bodies into JSON text, the
 * way a broken or hostile orchestrator could send them. A body is a tree of JSON values plus two
 * markers the serializer writes as text: `Deep` (a value wrapped in thousands of arrays or objects,
 * written without recursion) and `Raw` (number text JSON.stringify cannot write, such as `1e400`).
 * Objects may carry own keys such as `__proto__` (set with defineProperty, as JSON.parse does) and
 * keys written twice (the text holds both; JSON.parse keeps the last).
 */

/** A value wrapped `depth` times in arrays (`[[[v]]]`) or single-key objects (`{"a":{"a":v}}`). */
export class Deep {
  constructor(
    readonly depth: number,
    readonly kind: 'array' | 'object',
    readonly inner: unknown,
  ) {}
}

/** JSON number text written as it is. */
export class Raw {
  constructor(readonly text: string) {}
}

export type Random = () => number;

/** Keys that name Object.prototype members, or that code may treat specially. */
export const prototypeKeys = [
  '__proto__',
  'constructor',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'prototype',
  'toJSON',
  'length',
] as const;

const numberTexts = ['1e400', '-1e400', '1e-400', '-0', '123456789012345678901234567890', '0.1e1', '1E2'];
const numbers = [
  0,
  1,
  -1,
  2,
  -2,
  0.5,
  -1.5,
  4,
  1000,
  -1000,
  1001,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  1e15,
  -1e15,
  1e308,
  -1e308,
  Number.MIN_VALUE,
];
const strings = [
  '',
  ' ',
  '0',
  '5',
  ' -1 ',
  '+3',
  '1.5',
  '999999999999999',
  '9999999999999999',
  'abc',
  'alarm',
  'ok',
  'event',
  'scale-up',
  'scale-down',
  'UP',
  'down',
  'change_in_capacity',
  'ExactCapacity',
  'percent_change_in_capacity',
  'orchestration.autoscaling.end',
  'orchestration.autoscaling.start',
  'orchestration.autoscaling.error',
  'render-7',
  'ghost-node',
  'L4',
  'Voodoo 2',
  '10.0.0.1',
  '999.1.1.1',
  '::1',
  'a\u2028b\u0000c\nd',
  '\ud800',
  '{"event_type":"x","message_id":"y"}',
  ...prototypeKeys,
];

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** Sets an own enumerable property, also for `__proto__` (plain assignment would set the prototype). */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function hugeString(random: Random): string {
  return pick(random, ['x', '9', ' ', 'é', '\\']).repeat(pick(random, [300, 5_000, 70_000]));
}

/** Any JSON value: every type, the awkward numbers and strings, prototype-ish objects, deep nesting. */
export function randomValue(random: Random, depth = 0): unknown {
  const roll = random();
  if (roll < 0.08) return null;
  if (roll < 0.14) return random() < 0.5;
  if (roll < 0.3) return random() < 0.2 ? new Raw(pick(random, numberTexts)) : pick(random, numbers);
  if (roll < 0.5) return pick(random, strings);
  if (roll < 0.53) return hugeString(random);
  if (roll < 0.58)
    return new Deep(
      pick(random, [2, 64, 65, 500, 8_000]),
      random() < 0.7 ? 'array' : 'object',
      randomLeaf(random),
    );
  if (roll < 0.78 || depth >= 3) {
    const length = Math.floor(random() * 4);
    return Array.from({ length }, () => randomValue(random, depth + 1));
  }
  const object: Record<string, unknown> = {};
  const size = Math.floor(random() * 4);
  for (let i = 0; i < size; i++) {
    const key = random() < 0.5 ? pick(random, prototypeKeys) : pick(random, strings);
    setOwn(object, key, randomValue(random, depth + 1));
  }
  return object;
}

function randomLeaf(random: Random): unknown {
  return pick(random, [null, 1, 'x', true, [], {}]);
}

/** A slot of the tree: the container and the key or index holding a value. */
interface Slot {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
}

function slotsOf(root: unknown): Slot[] {
  const slots: Slot[] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      value.forEach((element, index) => {
        slots.push({ parent: value, key: index });
        stack.push(element);
      });
    } else if (
      value !== null &&
      typeof value === 'object' &&
      !(value instanceof Deep) &&
      !(value instanceof Raw)
    ) {
      const object = value as Record<string, unknown>;
      for (const key of Object.keys(object)) {
        slots.push({ parent: object, key });
        stack.push(object[key]);
      }
    }
  }
  return slots;
}

function objectsOf(root: unknown): Array<Record<string, unknown>> {
  const objects = slotsOf(root)
    .map((slot) => read(slot))
    .filter(
      (value): value is Record<string, unknown> =>
        value !== null &&
        typeof value === 'object' &&
        !Array.isArray(value) &&
        !(value instanceof Deep) &&
        !(value instanceof Raw),
    );
  if (root !== null && typeof root === 'object' && !Array.isArray(root))
    objects.push(root as Record<string, unknown>);
  return objects;
}

function read(slot: Slot): unknown {
  return (slot.parent as Record<string | number, unknown>)[slot.key];
}

function write(slot: Slot, value: unknown): void {
  if (Array.isArray(slot.parent)) slot.parent[slot.key as number] = value;
  else setOwn(slot.parent, slot.key as string, value);
}

/** Keys a serialized object writes a second time (JSON.parse keeps the last). */
const duplicates = new WeakMap<object, Array<[string, unknown]>>();

export type Mutation =
  | 'replace'
  | 'delete'
  | 'duplicate-key'
  | 'deepen'
  | 'prototype-key'
  | 'prototype-string'
  | 'huge'
  | 'rename'
  | 'empty';

const mutations: readonly Mutation[] = [
  'replace',
  'replace',
  'replace',
  'delete',
  'duplicate-key',
  'deepen',
  'prototype-key',
  'prototype-string',
  'huge',
  'rename',
  'empty',
];

/** Applies one random mutation to `root` (in place, except a replaced root, which is returned). */
export function mutate(root: unknown, random: Random): unknown {
  const slots = slotsOf(root);
  const mutation = pick(random, mutations);
  if (slots.length === 0 || random() < 0.02) return randomValue(random);
  const slot = pick(random, slots);
  switch (mutation) {
    case 'replace':
      write(slot, randomValue(random));
      break;
    case 'delete':
      if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
      else delete slot.parent[slot.key as string];
      break;
    case 'duplicate-key': {
      const objects = objectsOf(root);
      if (objects.length === 0) break;
      const target = pick(random, objects);
      const keys = Object.keys(target);
      const key = keys.length > 0 && random() < 0.8 ? pick(random, keys) : pick(random, prototypeKeys);
      const extra = duplicates.get(target) ?? [];
      extra.push([key, randomValue(random)]);
      duplicates.set(target, extra);
      break;
    }
    case 'deepen':
      write(
        slot,
        new Deep(
          pick(random, [1, 3, 64, 65, 1_000, 8_000, 20_000]),
          random() < 0.6 ? 'array' : 'object',
          read(slot),
        ),
      );
      break;
    case 'prototype-key': {
      const objects = objectsOf(root);
      if (objects.length > 0) setOwn(pick(random, objects), pick(random, prototypeKeys), randomValue(random));
      break;
    }
    case 'prototype-string':
      write(slot, pick(random, prototypeKeys));
      break;
    case 'huge':
      write(slot, random() < 0.5 ? hugeString(random) : new Raw(pick(random, numberTexts)));
      break;
    case 'rename':
      if (!Array.isArray(slot.parent)) {
        const value = read(slot);
        delete slot.parent[slot.key as string];
        setOwn(slot.parent, random() < 0.5 ? pick(random, prototypeKeys) : `${slot.key as string}_`, value);
      }
      break;
    case 'empty':
      write(slot, random() < 0.5 ? [] : {});
      break;
  }
  return root;
}

/** `base` (a plain JSON value, copied first) after 1 to 4 random mutations. */
export function mutated(base: unknown, random: Random): unknown {
  let root: unknown = JSON.parse(JSON.stringify(base));
  const count = 1 + Math.floor(random() * random() * 4);
  for (let i = 0; i < count; i++) root = mutate(root, random);
  return root;
}

/** The JSON text of a tree: markers as text, duplicate keys written twice. */
export function serialize(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Deep) {
    const open = value.kind === 'array' ? '[' : '{"a":';
    const close = value.kind === 'array' ? ']' : '}';
    return open.repeat(value.depth) + serialize(value.inner) + close.repeat(value.depth);
  }
  if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const entries: Array<[string, unknown]> = Object.keys(object).map((key) => [key, object[key]]);
    entries.push(...(duplicates.get(object) ?? []));
    return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${serialize(entry)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
