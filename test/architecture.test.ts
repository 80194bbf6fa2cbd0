import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** The domain core: plain TypeScript, and the state-store port it is written against (src/state). */
const coreFolders = ['cost', 'fleet', 'placement', 'sessions', 'scaling', 'state'];
/** The composition root: builds the store, the services and the gateway from the configuration. */
const compositionRoot = /^src\/(vca|main|create-store)\.ts$|^src\/http\//;

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => path.join(folder, file));
}

/** Every module a file imports or re-exports: `from '…'`, `import '…'` and `import('…')`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom|^import|\bimport\()\s*'([^']+)'/gm)].map((match) => match[1]!);
}

/** The repository-relative path a relative specifier names (posix separators), or undefined for a package. */
function resolvedPath(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return path.posix.normalize(path.posix.join(path.posix.dirname(file.split(path.sep).join('/')), specifier));
}

describe('architecture: the domain core', () => {
  const files = coreFolders.flatMap((folder) => sourceFiles(path.join('src', folder)));

  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files)('%s imports no store, no HTTP layer, no ioredis and no uWebSockets.js', (file) => {
    for (const specifier of importsOf(file)) {
      expect(specifier).not.toMatch(/uWebSockets|ioredis/);
      const target = resolvedPath(file, specifier);
      if (target !== undefined)
        expect(target).not.toMatch(/^src\/(store|http|hooks|metrics)\/|^src\/(vca|main|create-store)\.ts$/);
    }
  });

  it.each(files)('%s reads no clock or random source of its own', (file) => {
    const text = readFileSync(file, 'utf8');
    expect(text).not.toMatch(/Date\.now\(|new Date\(\)|Math\.random\(|randomUUID\(/);
  });
});

describe('architecture: the stores', () => {
  const files = sourceFiles('src/store');

  it.each(files)('%s implements the state-store port without reaching into the composition root', (file) => {
    for (const specifier of importsOf(file)) {
      const target = resolvedPath(file, specifier);
      if (target !== undefined) expect(target).not.toMatch(compositionRoot);
    }
  });

  it.each(files.filter((file) => !file.includes(`${path.sep}redis${path.sep}`)))(
    '%s (not the Redis store) imports no ioredis',
    (file) => {
      for (const specifier of importsOf(file)) expect(specifier).not.toMatch(/ioredis/);
    },
  );
});

describe('architecture: the wire contract', () => {
  const files = sourceFiles('src/wire');

  it.each(files)('%s imports only Node built-ins and src/wire, so a node can vendor it alone', (file) => {
    for (const specifier of importsOf(file)) {
      const target = resolvedPath(file, specifier);
      if (target === undefined) expect(specifier).toMatch(/^node:/);
      else expect(target).toMatch(/^src\/wire\//);
    }
  });
});

describe('architecture: the gpu-probe', () => {
  const files = sourceFiles('gpu-probe');

  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  // One exception: --simulate reads games.yaml and gpus.yaml with the gateway's own validating catalog
  // loader (src/config, imported lazily), so the simulation and the gateway cannot read them apart.
  const allowedFor = (file: string) =>
    file === path.join('gpu-probe', 'src', 'cli.ts') ? /^src\/(wire|cost|config)\// : /^src\/(wire|cost)\//;

  it.each(files)('%s imports from the gateway only the wire contract and the cost model', (file) => {
    for (const specifier of importsOf(file)) {
      const target = resolvedPath(file, specifier);
      if (target === undefined || target.startsWith('gpu-probe/')) continue;
      expect(target).toMatch(allowedFor(file));
    }
  });
});

describe('architecture: product code', () => {
  const files = [...sourceFiles('src'), ...sourceFiles('gpu-probe')];

  it.each(files)('%s imports nothing from the test kit, tests, benchmarks or the demo', (file) => {
    for (const specifier of importsOf(file)) {
      expect(resolvedPath(file, specifier) ?? '').not.toMatch(/^(kit|test|bench|demo)\//);
    }
  });
});
