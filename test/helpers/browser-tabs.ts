import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './browser-page';

/**
 * Real browser tabs against a real coordinator: Debian's Chromium driven by playwright-core,
 * each context a separate browser profile (its own IndexedDB, so its own identity), every
 * page's outgoing traffic recorded so a test can check what left the tab.
 */

/** Where browser tests save screenshots (gitignored; CI keeps the folder as an artifact). */
export const SCREENSHOT_DIR = resolve(__dirname, '..', 'artifacts', 'screenshots');

/** Everything a page sent: HTTP request bodies and WebSocket frames, in order. */
export interface SentTraffic {
  requests: { url: string; method: string; body: Buffer | null }[];
  frames: { url: string; payload: Buffer }[];
}

/** A page plus what it sent and what it reported as errors. */
export interface RecordedTab {
  page: Page;
  sent: SentTraffic;
  errors: string[];
}

/** One Chromium for a test file; `close()` ends it and every page. */
export class BrowserTabs {
  private constructor(private readonly browser: Browser) {}

  static async launch(executablePath: string): Promise<BrowserTabs> {
    const browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [...CHROMIUM_ARGS],
      timeout: 30_000,
    });
    return new BrowserTabs(browser);
  }

  /** A fresh profile: a new identity in its IndexedDB. */
  newProfile(): Promise<BrowserContext> {
    return this.browser.newContext({ viewport: { width: 1280, height: 900 } });
  }

  /** Opens `url` in `profile` with its traffic recorded from the first request on. */
  async open(profile: BrowserContext, url: string): Promise<RecordedTab> {
    const page = await profile.newPage();
    const sent: SentTraffic = { requests: [], frames: [] };
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('request', (request) => {
      sent.requests.push({
        url: request.url(),
        method: request.method(),
        body: request.postDataBuffer(),
      });
    });
    page.on('websocket', (socket) => {
      socket.on('framesent', (frame) => {
        const payload =
          typeof frame.payload === 'string' ? Buffer.from(frame.payload, 'utf8') : frame.payload;
        sent.frames.push({ url: socket.url(), payload });
      });
    });
    await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
    return { page, sent, errors };
  }

  async close(): Promise<void> {
    await this.browser.close();
  }
}

/** Reads a JSON-serialisable global the page keeps (`window.cohortJoin`, ...). */
export function readGlobal<T>(page: Page, name: string): Promise<T> {
  return page.evaluate<T>(
    `JSON.parse(JSON.stringify(globalThis[${JSON.stringify(name)}] ?? null))`,
  );
}

/** Polls a page global until `done(value)`; throws with the last value when time runs out. */
export async function waitForGlobal<T>(
  page: Page,
  name: string,
  done: (value: T) => boolean,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | null = null;
  while (Date.now() < deadline) {
    last = await readGlobal<T>(page, name);
    if (last !== null && done(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`window.${name} did not reach the expected state; last: ${JSON.stringify(last)}`);
}

/** Saves a full-page screenshot as `<SCREENSHOT_DIR>/<name>.png`; returns the path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = resolve(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
