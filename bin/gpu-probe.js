#!/usr/bin/env node
/**
 * The `gpu-probe` command (package.json `bin`), so a rendering node runs the probe as a command.
 * In a development checkout (the TypeScript source and tsx present) it runs the source through tsx;
 * otherwise — an installed package — the compiled agent from `npm run build`
 * (`dist/gpu-probe/src/cli.js`). `GPU_PROBE_USE_DIST=1` forces the compiled one. The arguments pass
 * through unchanged (`process.argv` keeps this file as the script).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = `${root}gpu-probe/src/cli.ts`;
const compiled = `${root}dist/gpu-probe/src/cli.js`;

async function registerTsx() {
  try {
    const { register } = await import('tsx/esm/api');
    register();
    return true;
  } catch {
    return false;
  }
}

const useSource = existsSync(source) && !process.env.GPU_PROBE_USE_DIST && (await registerTsx());
const entry = useSource ? source : existsSync(compiled) ? compiled : null;
if (entry === null) {
  process.stderr.write('gpu-probe: the agent is not built; run `npm run build` in its package\n');
  process.exit(1);
}
await import(pathToFileURL(entry).href);
