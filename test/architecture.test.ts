import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const coreFolders = ['cost', 'cluster', 'placement', 'sessions', 'scaling'];

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => path.join(folder, file));
}

describe('architecture: the domain core', () => {
  const files = coreFolders.flatMap((folder) => sourceFiles(path.join('src', folder)));

  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files)('%s imports neither the HTTP layer nor ioredis nor uWebSockets.js', (file) => {
    const imports = [...readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)].map((match) => match[1]);
    for (const specifier of imports) {
      expect(specifier).not.toMatch(/uWebSockets|ioredis|\/http\/|\/store\/redis\//);
    }
  });

  it.each(files)('%s reads no clock or random source of its own', (file) => {
    const text = readFileSync(file, 'utf8');
    expect(text).not.toMatch(/Date\.now\(|new Date\(\)|Math\.random\(|randomUUID\(/);
  });
});
