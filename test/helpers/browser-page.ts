import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { describeRequiring } from './requires';

/**
 * Runs real project code inside headless Chromium: bundles a TypeScript entry with esbuild
 * (browser platform, so a stray Node built-in fails the build instead of slipping through),
 * serves it from 127.0.0.1 (a secure context, which crypto.subtle requires) and drives the
 * page with playwright-core. Tests call into the bundle through its global name with JSON
 * arguments, so no test-side function is serialised into the page (coverage instrumentation
 * would break such functions).
 */

/** Where Chromium is looked for when CHROMIUM_PATH is not set (Debian's `apt-get install chromium`). */
export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags that keep a headless Chromium quiet and offline (see shared/environment.md). */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-gpu',
];

/** Either the Chromium to drive, or why there is none (for an honest "did not run" message). */
export type ChromiumLookup = { executablePath: string } | { missing: string };

/** Finds Chromium: CHROMIUM_PATH if set, else {@link DEFAULT_CHROMIUM_PATH}; never downloads one. */
export function findChromium(): ChromiumLookup {
  const fromEnv = process.env.CHROMIUM_PATH;
  const candidate = fromEnv && fromEnv.length > 0 ? fromEnv : DEFAULT_CHROMIUM_PATH;
  if (existsSync(candidate)) return { executablePath: candidate };
  return {
    missing: fromEnv
      ? `CHROMIUM_PATH=${fromEnv} does not exist`
      : `no Chromium at ${DEFAULT_CHROMIUM_PATH} and CHROMIUM_PATH is not set`,
  };
}

/**
 * Declares a browser suite that runs only where Chromium exists; elsewhere jest reports it as
 * skipped with the reason, and under CI (which installs Chromium) it fails.
 */
export function describeWithChromium(title: string, body: (executablePath: string) => void): void {
  const lookup = findChromium();
  describeRequiring(
    title,
    'executablePath' in lookup
      ? { met: true, value: lookup.executablePath }
      : { met: false, reason: `${lookup.missing} (install chromium or set CHROMIUM_PATH)` },
    body,
  );
}

/** An esbuild bundle plus what went into it, so tests can assert it is browser-clean. */
export interface BrowserBundle {
  code: string;
  globalName: string;
  /** Every input file, relative to the repository root (e.g. 'shared/secagg/prg.ts'). */
  inputs: string[];
  /**
   * Imports a package.json "browser" field switched off, as `importer -> path`; the only
   * expected one is tweetnacl's optional `require('crypto')` fallback, never project code.
   */
  disabledImports: string[];
}

const REPO_ROOT = resolve(__dirname, '..', '..');

/**
 * Bundles `entry` (a path relative to the repository root) as an IIFE exposing its exports on
 * `globalThis[globalName]`. platform 'browser' honours package.json "browser" maps and makes
 * any import of a Node built-in a build error, which is the point. `root` is the repository
 * root (the default holds when running from source; compiled code passes it).
 */
export async function bundleForBrowser(
  entry: string,
  globalName: string,
  root = REPO_ROOT,
): Promise<BrowserBundle> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    format: 'iife',
    globalName,
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const output = result.outputFiles[0];
  if (!output) throw new Error(`esbuild produced no output for ${entry}`);
  const disabledImports: string[] = [];
  for (const [file, input] of Object.entries(result.metafile.inputs)) {
    for (const imported of input.imports) {
      if (imported.path.startsWith('(disabled):')) {
        disabledImports.push(`${file} -> ${imported.path}`);
      }
    }
  }
  return {
    code: output.text,
    globalName,
    inputs: Object.keys(result.metafile.inputs),
    disabledImports,
  };
}

/** A Chromium page with a bundle loaded, and a way to call the bundle's exports. */
export interface BundlePage {
  page: Page;
  /** Uncaught errors and console errors the page reported, for failure messages. */
  pageErrors: string[];
  /**
   * Calls `globalThis[globalName][fn](...args)` in the page and returns its (awaited) result.
   * Arguments and result cross as JSON: pass numbers, strings, arrays, plain objects.
   */
  call<T>(fn: string, ...args: unknown[]): Promise<T>;
  /** Closes the browser and the HTTP server. */
  close(): Promise<void>;
}

/** Serves `bundle` from 127.0.0.1 on a free port, opens it in Chromium and waits until it loaded. */
export async function openBundlePage(
  executablePath: string,
  bundle: BrowserBundle,
): Promise<BundlePage> {
  const html =
    '<!doctype html><html><head><meta charset="utf-8"><title>cohort browser test</title>' +
    '<link rel="icon" href="data:,"><script src="/bundle.js"></script></head><body></body></html>';
  const server = createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
    } else if (req.url === '/bundle.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(bundle.code);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(0, '127.0.0.1', () => resolveListen());
  });
  const closeServer = (): Promise<void> =>
    new Promise((resolveClose) => {
      server.closeAllConnections();
      server.close(() => resolveClose());
    });

  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [...CHROMIUM_ARGS],
      timeout: 30_000,
    });
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
    const { port } = server.address() as AddressInfo;
    await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'load', timeout: 30_000 });
    const loaded = await page.evaluate(`typeof globalThis[${JSON.stringify(bundle.globalName)}]`);
    if (loaded !== 'object') {
      throw new Error(`bundle did not load in Chromium: ${pageErrors.join('; ') || 'no error'}`);
    }
    const openedBrowser = browser;
    return {
      page,
      pageErrors,
      call<T>(fn: string, ...args: unknown[]): Promise<T> {
        const target = `globalThis[${JSON.stringify(bundle.globalName)}][${JSON.stringify(fn)}]`;
        const argList = args.map((a) => JSON.stringify(a)).join(', ');
        return page.evaluate<T>(`${target}(${argList})`);
      },
      async close(): Promise<void> {
        await openedBrowser.close();
        await closeServer();
      },
    };
  } catch (err) {
    await browser?.close();
    await closeServer();
    throw err;
  }
}
