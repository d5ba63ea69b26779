import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Content types of the files `npm run build` puts in `dist/browser/`. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Asset names are flat file names: no folder, no `..`, nothing a path could escape with. */
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Finds `dist/browser/` (the bundles `npm run build` makes from client-browser/): beside the
 * compiled coordinator when running from dist, or under the package root when running from
 * source (tests). Null when the bundles have not been built.
 */
export function findBrowserAssets(from = __dirname): string | null {
  let dir = resolve(from);
  for (;;) {
    const candidates = [join(dir, 'browser'), join(dir, 'dist', 'browser')];
    for (const candidate of candidates) {
      if (existsSync(join(candidate, 'join.html'))) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** A file read for serving: its bytes and content type. */
export interface Asset {
  body: Buffer;
  contentType: string;
}

/**
 * The built browser files, read once and kept (a few MB: the bundles and the wasm binaries),
 * so serving a page costs no disk access and a rebuild while running cannot serve half files.
 */
export class BrowserAssets {
  private readonly cache = new Map<string, Asset>();

  constructor(readonly dir: string | null) {}

  /** The asset called `name` (e.g. 'join.js'), or null when there is none. */
  get(name: string): Asset | null {
    if (this.dir === null || !ASSET_NAME.test(name)) return null;
    const cached = this.cache.get(name);
    if (cached) return cached;
    const dot = name.lastIndexOf('.');
    const contentType = dot > 0 ? CONTENT_TYPES[name.slice(dot)] : undefined;
    let asset: Asset | null = null;
    if (contentType !== undefined) {
      try {
        asset = { body: readFileSync(join(this.dir, name)), contentType };
      } catch {
        asset = null;
      }
    }
    // Only files that exist are kept: unknown names cannot grow the cache.
    if (asset) this.cache.set(name, asset);
    return asset;
  }
}
