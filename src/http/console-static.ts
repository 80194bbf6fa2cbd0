/**
 * The operator console's static files, served at `/console`: the page built by `npm run build:console`
 * (`console/build-console.ts`) into `dist/console/` of the package. Only files the build wrote are
 * served — names are looked up in the listing of the build's `assets/` folder, so no request path can
 * reach anything else (no directory traversal by construction). Hashed assets are immutable; the page
 * itself is `no-cache`, so a new build is picked up on the next load. Every answer carries a strict
 * Content-Security-Policy: scripts, styles and connections from this origin only, nothing inline.
 * A missing build answers 503 saying how to build it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VcaError } from '../errors.js';
import type { Reply, RequestContext } from './handler-api.js';

/** The URL prefix of the console. */
export const consolePath = '/console';

/**
 * No inline script or style, no other origin. `connect-src 'self'` covers the feed's WebSocket on the
 * same host and port in current browsers (CSP Level 3 matches ws: against an http: 'self').
 */
export const consoleContentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders: Record<string, string> = {
  'content-security-policy': consoleContentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const contentTypes: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** esbuild's `[name]-[hash]` entry and chunk names: an 8-character upper-case base32 hash. */
const hashedName = /-[A-Z0-9]{8}\.[a-z0-9]+$/;
/** What an asset name may look like at all; anything else is 404 before any look-up. */
const safeAssetName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

interface ConsoleFile {
  body: Buffer;
  contentType: string;
  cacheControl: string;
}

interface LoadedBuild {
  indexMtimeMs: number;
  index: ConsoleFile;
  assets: Map<string, ConsoleFile>;
}

/** The folder `npm run build:console` writes to: `dist/console/` of the package this file belongs to. */
export function defaultConsoleDirectory(): string {
  let folder = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(folder, 'package.json'))) return path.join(folder, 'dist', 'console');
    const parent = path.dirname(folder);
    if (parent === folder) return path.resolve('dist', 'console');
    folder = parent;
  }
}

export class ConsoleAssets {
  readonly directory: string;
  private build: LoadedBuild | undefined;

  constructor(directory: string = defaultConsoleDirectory()) {
    this.directory = directory;
  }

  /** `GET /console` and `GET /console/`: the page. */
  index(): Reply {
    const build = this.current();
    if (build === undefined) return this.notBuilt();
    return this.reply(build.index);
  }

  /** `GET /console/assets/:name`: a file the build wrote, or 404. */
  asset(ctx: RequestContext): Reply {
    const name = ctx.params.name ?? '';
    if (!safeAssetName.test(name) || name.includes('..'))
      throw new VcaError('VCA_ERR_ROUTE_NOT_FOUND', `No console asset ${JSON.stringify(name)}`);
    const build = this.current();
    if (build === undefined) return this.notBuilt();
    const file = build.assets.get(name);
    if (file === undefined)
      throw new VcaError('VCA_ERR_ROUTE_NOT_FOUND', `No console asset ${JSON.stringify(name)}`);
    return this.reply(file);
  }

  private reply(file: ConsoleFile): Reply {
    return {
      status: 200,
      rawBody: file.body,
      contentType: file.contentType,
      headers: { ...securityHeaders, 'cache-control': file.cacheControl },
    };
  }

  private notBuilt(): Reply {
    return {
      status: 503,
      rawBody:
        `The operator console is not built (nothing at ${this.directory}). ` +
        'Run `npm run build:console` (or `npm run build`) and reload.\n',
      contentType: 'text/plain; charset=utf-8',
      headers: { ...securityHeaders, 'cache-control': 'no-store', 'retry-after': '5' },
    };
  }

  /** The build on disk, re-read when its index.html changed (a rebuild while the gateway runs). */
  private current(): LoadedBuild | undefined {
    const indexFile = path.join(this.directory, 'index.html');
    let mtimeMs: number;
    try {
      mtimeMs = statSync(indexFile).mtimeMs;
    } catch {
      this.build = undefined;
      return undefined;
    }
    if (this.build?.indexMtimeMs === mtimeMs) return this.build;
    try {
      this.build = this.load(indexFile, mtimeMs);
    } catch {
      // Caught mid-rebuild: serve what was loaded before, if anything.
      return this.build;
    }
    return this.build;
  }

  private load(indexFile: string, indexMtimeMs: number): LoadedBuild {
    const assets = new Map<string, ConsoleFile>();
    const assetFolder = path.join(this.directory, 'assets');
    const names = existsSync(assetFolder) ? readdirSync(assetFolder) : [];
    for (const name of names) {
      const file = path.join(assetFolder, name);
      if (!safeAssetName.test(name) || !statSync(file).isFile()) continue;
      assets.set(name, {
        body: readFileSync(file),
        contentType: contentTypes[path.extname(name)] ?? 'application/octet-stream',
        cacheControl: hashedName.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache',
      });
    }
    return {
      indexMtimeMs,
      index: { body: readFileSync(indexFile), contentType: contentTypes['.html']!, cacheControl: 'no-cache' },
      assets,
    };
  }
}
