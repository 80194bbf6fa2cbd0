/**
 * Builds the operator console (`console/src/`) into the folder the gateway serves at `/console`
 * (default `dist/console/`): one esbuild bundle of the TypeScript sources with Preact and uPlot, its
 * CSS, both named by content hash under `assets/`, and an `index.html` naming them. Run by
 * `npm run build:console` (part of `npm run build`); the console tests call `buildConsole` first so
 * they never test a stale build.
 */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const consoleFolder = path.dirname(fileURLToPath(import.meta.url));
export const defaultConsoleOutput = path.join(consoleFolder, '..', 'dist', 'console');

export interface ConsoleBuild {
  directory: string;
  /** Every file written, with its size in bytes. */
  files: Array<{ name: string; bytes: number }>;
}

function indexHtml(script: string, stylesheet: string | undefined): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark light">
<meta name="referrer" content="no-referrer">
<title>VCA operator console</title>
<link rel="icon" href="data:,">
${stylesheet ? `<link rel="stylesheet" href="/console/assets/${stylesheet}">\n` : ''}<script type="module" src="/console/assets/${script}"></script>
</head>
<body>
<div id="app"><noscript>The operator console needs JavaScript.</noscript></div>
</body>
</html>
`;
}

/** Builds the console into `directory` (replacing an earlier build there). */
export async function buildConsole(directory: string = defaultConsoleOutput): Promise<ConsoleBuild> {
  const assets = path.join(directory, 'assets');
  rmSync(assets, { recursive: true, force: true });
  mkdirSync(assets, { recursive: true });
  const result = await build({
    entryPoints: { console: path.join(consoleFolder, 'src', 'main.tsx') },
    outdir: assets,
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'eof',
    metafile: true,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
  const script = outputs.find((name) => name.endsWith('.js'));
  const stylesheet = outputs.find((name) => name.endsWith('.css'));
  if (script === undefined) throw new Error('esbuild wrote no script for the console');
  writeFileSync(path.join(directory, 'index.html'), indexHtml(script, stylesheet));
  const files = [
    { name: 'index.html', bytes: statSync(path.join(directory, 'index.html')).size },
    ...readdirSync(assets).map((name) => ({
      name: `assets/${name}`,
      bytes: statSync(path.join(assets, name)).size,
    })),
  ];
  return { directory, files };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = await buildConsole(process.argv[2] ?? defaultConsoleOutput);
  const total = built.files.reduce((sum, file) => sum + file.bytes, 0);
  for (const file of built.files) process.stdout.write(`${file.name}\t${file.bytes} bytes\n`);
  process.stdout.write(`operator console built in ${built.directory}: ${total} bytes\n`);
}
