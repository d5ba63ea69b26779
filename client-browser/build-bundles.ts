/* eslint-disable no-console -- a build script reports what it built */
/**
 * Builds the browser assets the coordinator serves under `/assets/`: the join page and
 * dashboard bundles (esbuild, one IIFE each, since the pages' CSP allows only same-origin
 * scripts and no modules are needed), their HTML, the shared stylesheet and the tfjs wasm
 * binaries. Run by `npm run build` after tsc, as `node dist/client-browser/build-bundles.js`.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';
import type { Metafile } from 'esbuild';

/**
 * One page: its bundle entry and HTML (relative to the repository root), its output name, and
 * an optional stylesheet of its own, served beside the shared `style.css`.
 */
interface BundleEntry {
  name: string;
  entry: string;
  html: string;
  css: string;
}

/** The pages; an entry whose file does not exist yet is skipped (and said so). */
const ENTRIES: readonly BundleEntry[] = [
  {
    name: 'join',
    entry: 'client-browser/join/main.ts',
    html: 'client-browser/join/join.html',
    css: 'client-browser/join/join.css',
  },
  {
    name: 'dashboard',
    entry: 'client-browser/dashboard/main.ts',
    html: 'client-browser/dashboard/dashboard.html',
    css: 'client-browser/dashboard/dashboard.css',
  },
];

/** Where the assets go, relative to the repository root. */
const OUT_DIR = 'dist/browser';

/** The tfjs wasm binaries (plain, SIMD, threaded SIMD); tfjs picks one at run time. */
const WASM_DIR = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';

/** The threaded binary must be present: crossOriginIsolated pages use it for multi-threading. */
const REQUIRED_WASM = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
];

/**
 * The repository root: the nearest directory above `start` whose package.json is named
 * "cohort", so the script works from `dist/client-browser/` and from the source tree alike.
 */
export function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
        if (parsed.name === 'cohort') return dir;
      } catch {
        // Not ours (or unreadable): keep walking up.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json named "cohort" above ${start}`);
    dir = parent;
  }
}

const NODE_BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/**
 * Imports of Node built-ins that slipped into a bundle: marked external, or switched off by a
 * package's "browser" map from project code (a package's own optional fallback, such as
 * tweetnacl's `require('crypto')`, is expected and allowed). esbuild already fails on a
 * built-in it cannot resolve; this catches the ones it quietly left out.
 */
export function nodeBuiltinImports(metafile: Metafile): string[] {
  const found: string[] = [];
  for (const [file, input] of Object.entries(metafile.inputs)) {
    for (const imported of input.imports) {
      const path = imported.path.replace(/^\(disabled\):/, '');
      const builtin = NODE_BUILTINS.has(path) || path.startsWith('node:');
      const disabledFromProject =
        imported.path.startsWith('(disabled):') && !file.includes('node_modules/');
      if ((builtin && imported.external === true) || disabledFromProject) {
        found.push(`${file} -> ${imported.path}`);
      }
    }
  }
  return found;
}

async function main(): Promise<void> {
  const root = findRepoRoot(__dirname);
  const outDir = join(root, OUT_DIR);
  mkdirSync(outDir, { recursive: true });
  const present = ENTRIES.filter((entry) => existsSync(join(root, entry.entry)));
  for (const skipped of ENTRIES.filter((entry) => !present.includes(entry))) {
    console.log(`browser: skipped ${skipped.name} (${skipped.entry} does not exist)`);
  }
  if (present.length > 0) {
    const result = await build({
      absWorkingDir: root,
      entryPoints: Object.fromEntries(present.map((entry) => [entry.name, entry.entry])),
      outdir: outDir,
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      minify: true,
      sourcemap: true,
      metafile: true,
      legalComments: 'eof',
      logLevel: 'warning',
      define: { 'process.env.NODE_ENV': '"production"' },
    });
    const builtins = nodeBuiltinImports(result.metafile);
    if (builtins.length > 0) {
      throw new Error(
        `browser bundles import Node built-ins (they cannot run in a tab):\n  ${builtins.join('\n  ')}`,
      );
    }
    for (const [file, output] of Object.entries(result.metafile.outputs)) {
      if (file.endsWith('.js')) {
        console.log(`browser: built ${file} (${(output.bytes / 1024).toFixed(0)} KiB)`);
      }
    }
  }
  const copies: Array<[string, string]> = [];
  for (const entry of present) {
    for (const [from, ext] of [
      [entry.html, 'html'],
      [entry.css, 'css'],
    ] as const) {
      const file = join(root, from);
      if (existsSync(file)) copies.push([file, join(outDir, `${entry.name}.${ext}`)]);
    }
  }
  copies.push([join(root, 'client-browser/ui/style.css'), join(outDir, 'style.css')]);
  const wasmDir = join(root, WASM_DIR);
  const wasm = readdirSync(wasmDir).filter((file) => file.endsWith('.wasm'));
  for (const required of REQUIRED_WASM) {
    if (!wasm.includes(required))
      throw new Error(`missing tfjs wasm binary ${WASM_DIR}/${required}`);
  }
  for (const file of wasm) copies.push([join(wasmDir, file), join(outDir, file)]);
  for (const [from, to] of copies) {
    copyFileSync(from, to);
    console.log(
      `browser: copied ${relative(root, to)} (${(statSync(to).size / 1024).toFixed(0)} KiB)`,
    );
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(
      `browser build failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    process.exitCode = 1;
  });
}
