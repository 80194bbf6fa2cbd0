/**
 * Summarizes a V8 .cpuprofile (from `--cpu-prof`, e.g. BENCH_CPU_PROF=<dir> npm run bench:http):
 * self time by function and by file, and inclusive time of the project's own functions.
 * Usage: tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: tsx bench/profile-summary.ts <file.cpuprofile> [top]\n');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
};

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMicros = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!;
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);
const idleIds = new Set(
  profile.nodes.filter((n) => ['(idle)', '(program)'].includes(n.callFrame.functionName)).map((n) => n.id),
);
const busy = total - [...idleIds].reduce((a, id) => a + (selfMicros.get(id) ?? 0), 0);

const shortUrl = (url: string) =>
  url.replace(/^file:\/\/.*?\/(src|bench|node_modules)\//, '$1/') || '(native)';
const label = (node: ProfileNode) =>
  `${node.callFrame.functionName || '(anonymous)'} ${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;

const selfByFunction = new Map<string, number>();
const selfByFile = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const node = byId.get(id)!;
  selfByFunction.set(label(node), (selfByFunction.get(label(node)) ?? 0) + micros);
  const fileKey = shortUrl(node.callFrame.url);
  selfByFile.set(fileKey, (selfByFile.get(fileKey) ?? 0) + micros);
}

// Inclusive time per function label (counted once per sample even when recursive).
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const inclusive = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const seen = new Set<string>();
  for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
    const key = label(byId.get(cursor)!);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + micros);
  }
}

const pct = (micros: number) => `${((100 * micros) / busy).toFixed(1).padStart(5)} %`;
const print = (title: string, map: Map<string, number>, filter: (key: string) => boolean = () => true) => {
  console.log(`\n${title}`);
  for (const [key, micros] of [...map]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    console.log(`${pct(micros)}  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${key}`);
  }
};
console.log(
  `profile ${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s not idle (percentages of that)`,
);
print('self time by function', selfByFunction);
print('self time by file', selfByFile);
print('inclusive time, src/ functions', inclusive, (key) => key.includes(' src/'));
