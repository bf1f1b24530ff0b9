// Shared by the board's browser scripts: Chromium launch (Debian's /usr/bin/chromium through
// playwright-core, a fresh profile), waits with messages that say what was expected, page
// error collection, and the run/exit protocol (0 passed, 1 failed, 2 bad usage or no browser).

import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const STEP_MS = 30000;
export const RUN_MS = 60000;

export class Failure extends Error {}

export function check(condition, message) {
  if (!condition) throw new Failure(message);
}

/** Waits for a locator's state; the failure says what was expected. */
export async function expectState(locator, state, what, timeout = STEP_MS) {
  try {
    await locator.waitFor({ state, timeout });
  } catch {
    throw new Failure(`${what} (waited ${timeout / 1000} s)`);
  }
}

/** Waits for `fn(arg)` to be true in the page; the failure says what was expected. */
export async function waitUntil(page, fn, arg, what, timeout = STEP_MS) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch {
    throw new Failure(`${what} (waited ${timeout / 1000} s)`);
  }
}

/**
 * Collects uncaught exceptions and console errors of a page into `problems`. With
 * `refusalsExpected`, the refused requests and WebSocket handshakes of a missing or wrong
 * key are expected; `allowed(text, url)` may accept other messages the test provokes.
 */
export function watchPage(page, problems, { refusalsExpected = false, allowed = () => false } = {}) {
  page.on('pageerror', (e) => problems.push(`uncaught exception in the page: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    const url = m.location().url || '';
    if (refusalsExpected && (/\b40[13]\b/.test(text) || /^WebSocket connection to .* failed/.test(text))) return;
    if (allowed(text, url)) return;
    problems.push(`console error: ${text}`);
  });
}

/** The board's address with `?api_key=`. */
export function keyedUrl(boardUrl, apiKey) {
  const url = new URL(boardUrl);
  url.searchParams.set('api_key', apiKey);
  return url.href;
}

/** Waits until the board's WebSocket is connected. */
export async function waitLive(page) {
  await waitUntil(page, () => document.querySelector('[data-testid="ws-status"]').dataset.state === 'open',
    null, 'the board\'s WebSocket should connect (status "live")');
}

/**
 * Parses `<board url> <api key> <screenshot.png> [replay file]`, launches Chromium and runs
 * `scenario({context, args, log, problems, setPage})`; exits 0 when it returns and no page
 * problem was seen, else 1 with the first failure (and `<screenshot>-failure.png`).
 */
export async function main(name, scenario) {
  const [boardUrl, apiKey, screenshotPath, replayFile = 'replay/hello_cli.jsonl'] = process.argv.slice(2);
  if (!boardUrl || !apiKey || !screenshotPath) {
    console.error(`usage: node ${name}.test.mjs <board url> <api key> <screenshot.png> [replay file]`);
    process.exit(2);
  }
  const executablePath = process.env.ORKET_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    console.error(`${name} test: no Chromium at ${executablePath}: install it with \`apt-get install -y chromium\` (bash .ci/setup does it)`);
    process.exit(2);
  }
  const watchdog = setTimeout(() => {
    console.error(`${name} test FAILED: took longer than 300 s in all`);
    process.exit(1);
  }, 300000);
  const log = (msg) => console.log(`${name} test: ${msg}`);
  const profile = mkdtempSync(join(tmpdir(), 'orket-board-chromium-'));
  const problems = [];
  let context;
  let page = null;
  let exitCode = 0;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
      viewport: { width: 1440, height: 1000 },
      colorScheme: 'light',
    });
    await scenario({
      context,
      args: { boardUrl, apiKey, screenshotPath, replayFile },
      log,
      problems,
      setPage: (p) => {
        page = p;
      },
    });
    check(problems.length === 0, problems.join('\n'));
    log('passed');
  } catch (e) {
    exitCode = 1;
    console.error(`${name} test FAILED: ${e instanceof Failure ? e.message : e.stack || e}`);
    if (problems.length) console.error(`page problems:\n  ${problems.join('\n  ')}`);
    if (page && !page.isClosed()) {
      const failureShot = screenshotPath.replace(/(\.png)?$/i, '-failure.png');
      await page.screenshot({ path: failureShot, fullPage: true }).then(
        () => console.error(`${name} test: failure screenshot: ${failureShot}`),
        () => {},
      );
    }
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    clearTimeout(watchdog);
  }
  process.exit(exitCode);
}
