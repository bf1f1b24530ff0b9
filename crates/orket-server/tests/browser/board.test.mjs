// Drives the Orket web board in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core; no browser download) against a running `orket serve` whose project is a
// copy of demo/.
//
//   node board.test.mjs <board url> <api key> <screenshot.png> [replay file]
//
// 1. Without a key the board shows the API-key banner; a wrong key is refused (403); the
//    right key typed into the banner loads the board.
// 2. With `?api_key=` in the address (taken out of the address bar), a start with an unknown
//    target shows the server's error as inert text; then the board's form starts a replayed run
//    of the epic `hello_cli`: card DEMO-1 must leave the ready column and reach the done column
//    live (WebSocket), as the same DOM node, without any navigation or reload; the run must end
//    `completed` with 3/3, and the timeline, the event stream and the project panel show it.
//    A full-page screenshot goes to <screenshot.png>.
// 3. A slow run started from the form and halted with the Halt button ends `canceled`.
// Exits 0 on success, 1 with a message on the first failure (and a screenshot next to the
// requested one, `-failure.png`), 2 on bad usage or a missing browser.

import {
  RUN_MS, check, expectState, keyedUrl, main, waitLive, waitUntil, watchPage,
} from './lib.mjs';

await main('board', async ({ context, args, log, problems, setPage }) => {
  const { boardUrl, apiKey, screenshotPath, replayFile } = args;

  // ---- 1. the API key -------------------------------------------------------------------
  const authPage = await context.newPage();
  watchPage(authPage, problems, { refusalsExpected: true });
  await authPage.goto(boardUrl, { waitUntil: 'load' });
  const banner = authPage.getByTestId('auth-banner');
  await expectState(banner, 'visible', 'without a key, the API-key banner should appear');
  const bannerText = await banner.innerText();
  check(/API key/i.test(bannerText), `the key banner should say an API key is needed; it says: ${bannerText}`);
  await authPage.getByTestId('auth-key').fill(`${apiKey}-wrong`);
  await authPage.getByTestId('auth-submit').click();
  await waitUntil(authPage, () => {
    const b = document.querySelector('[data-testid="auth-banner"]');
    return b && !b.hidden && b.dataset.status === '403';
  }, null, 'a wrong key should bring the banner back with the refusal (403)');
  check(/refused/i.test(await banner.innerText()), 'the banner should say the key was refused');
  await authPage.getByTestId('auth-key').fill(apiKey);
  await authPage.getByTestId('auth-submit').click();
  await expectState(banner, 'hidden', 'the right key should hide the banner');
  await waitUntil(authPage, () => {
    const b = document.querySelector('[data-testid="auth-banner"]');
    const ws = document.querySelector('[data-testid="ws-status"]');
    return b.hidden && ws.dataset.state === 'open';
  }, null, 'with the right key the board should load and its WebSocket connect');
  await authPage.close();
  log('API key banner: missing → asked, wrong → refused, right → board loads');

  // ---- 2. a live run --------------------------------------------------------------------
  const page = await context.newPage();
  setPage(page);
  // The unknown target started on purpose below is refused (400 or 404).
  watchPage(page, problems, { allowed: (text, url) => /status of 40[04]/.test(text) && url.endsWith('/v1/system/run-active') });
  await page.goto(keyedUrl(boardUrl, apiKey), { waitUntil: 'load' });
  check(!page.url().includes('api_key'), `the key should leave the address bar; the address is ${page.url()}`);
  let navigations = 0;
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations += 1;
  });
  await page.evaluate(() => {
    window.__orketMarker = 'same-page';
    // Where card DEMO-1 is seen, per run shown (the board's kanban names its run).
    window.__demo1 = {};
    const kanban = document.querySelector('[data-testid="kanban"]');
    const note = () => {
      const card = kanban.querySelector('[data-testid="card-DEMO-1"]');
      const run = kanban.dataset.runId;
      if (!card || !run) return;
      const seen = window.__demo1[run] || (window.__demo1[run] = { columns: [], node: null, nodes: 0 });
      if (card !== seen.node) {
        seen.node = card;
        seen.nodes += 1;
      }
      const col = card.closest('[data-testid^="column-"]');
      const status = col ? col.dataset.status : '(none)';
      if (seen.columns[seen.columns.length - 1] !== status) seen.columns.push(status);
    };
    new MutationObserver(note).observe(kanban, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-run-id'] });
  });
  await waitLive(page);
  check(await page.getByTestId('auth-banner').isHidden(), 'with ?api_key= the key banner should stay hidden');

  await page.getByTestId('start-provider').selectOption('replay');
  await page.getByTestId('start-replay').fill(replayFile);
  await page.getByTestId('start-delay').fill('1000');
  await page.getByTestId('start-reset').check();

  // A refused start shows the server's error as text: markup in it stays inert.
  await page.getByTestId('start-target').fill('<img src=x onerror="window.__injected=1">');
  await page.getByTestId('start-run').click();
  await waitUntil(page, () => {
    const m = document.querySelector('[data-testid="start-message"]');
    return m.classList.contains('error') && m.textContent.length > 0;
  }, null, 'starting an unknown target should show the server\'s error in the form');
  const refused = await page.getByTestId('start-message').innerText();
  check(await page.locator('[data-testid="start-message"] img').count() === 0
    && await page.evaluate(() => window.__injected === undefined),
  `the error text was inserted as HTML: ${refused}`);
  log(`unknown target refused: ${refused}`);

  check(/not found|no epic|unknown|<img/i.test(refused), `the refusal should be about the unknown target: ${refused}`);

  await page.getByTestId('start-target').fill('hello_cli');
  await page.getByTestId('start-run').click();
  await waitUntil(page, () => /Run \S+ started/.test(document.querySelector('[data-testid="start-message"]').textContent),
    null, 'the start form should report "Run <id> started"');
  const startText = await page.getByTestId('start-message').innerText();
  const runId = /Run (\S+) started/.exec(startText)[1];
  log(`run ${runId} started from the form`);

  await expectState(page.locator('[data-testid="column-done"] [data-testid="card-DEMO-1"]'), 'attached',
    'card DEMO-1 should reach the done column', RUN_MS);
  const demo1 = await page.evaluate((run) => {
    const seen = window.__demo1[run] || { columns: [], nodes: 0 };
    return { columns: seen.columns, nodes: seen.nodes };
  }, runId);
  log(`DEMO-1 went through the columns ${demo1.columns.join(' → ')}`);
  check(demo1.columns[demo1.columns.length - 1] === 'done', `DEMO-1 should end in done, not ${demo1.columns.join(' → ')}`);
  check(demo1.columns.length >= 2 && demo1.columns[0] !== 'done',
    `DEMO-1 should be seen in another column before done (live moves); seen: ${demo1.columns.join(' → ')}`);
  check(demo1.nodes === 1, `the card DEMO-1 should be moved, not redrawn (${demo1.nodes} different nodes)`);

  await waitUntil(page, () => document.querySelector('[data-testid="run-status"]').textContent === 'completed',
    null, 'the run should end "completed"', RUN_MS);
  for (const id of ['DEMO-1', 'DEMO-2', 'DEMO-3']) {
    await expectState(page.locator(`[data-testid="column-done"] [data-testid="card-${id}"]`), 'attached',
      `card ${id} should be in the done column once the run completed`);
  }
  await waitUntil(page, (id) => {
    const p = document.querySelector(`[data-testid="run-progress-${id}"]`);
    return p && p.textContent === '3/3';
  }, runId, `the run list should show 3/3 for run ${runId}`);
  await waitUntil(page, () => document.querySelectorAll('[data-testid="timeline"] [data-testid^="turn-"]').length >= 6,
    null, 'the timeline should show the run\'s 6 turns');
  await waitUntil(page, () => {
    const roles = document.querySelector('[data-testid="run-roles"]').textContent;
    return /coder 3 turns/.test(roles) && /integrity_guard 3 turns/.test(roles);
  }, null, 'the run header should show 3 turns each for coder and integrity_guard');
  await waitUntil(page, () => {
    const epic = document.querySelector('[data-testid="epic-hello_cli"]');
    return epic && /3\/3/.test(epic.textContent);
  }, null, 'the project panel should show hello_cli with 3/3 issues finished');
  const toDone = page.locator('[data-testid="event"][data-event="status_change"][data-issue-id="DEMO-1"]', { hasText: '→ done' });
  check(await toDone.count() >= 1, 'the event stream should show DEMO-1\'s status_change to done');
  check(await page.locator('[data-testid="event"][data-event="session_end"]').count() >= 1,
    'the event stream should show session_end');

  const marker = await page.evaluate(() => window.__orketMarker);
  check(marker === 'same-page', 'the page was reloaded (the window marker is gone)');
  check(navigations === 0, `the page navigated ${navigations} time(s) during the run`);
  const errorBanner = page.getByTestId('error-banner');
  check(await errorBanner.isHidden(), `the error banner shows: ${await errorBanner.innerText().catch(() => '')}`);
  check(problems.length === 0, problems.join('\n'));

  await page.screenshot({ path: screenshotPath, fullPage: true });
  log(`screenshot: ${screenshotPath}`);

  // ---- 3. halt ----------------------------------------------------------------------------
  // A slow run (5 s a reply) halted from the board ends canceled at the next turn boundary.
  await page.getByTestId('start-delay').fill('5000');
  await page.getByTestId('start-reset').check();
  await page.getByTestId('start-run').click();
  await waitUntil(page, (previous) => {
    const m = /Run (\S+) started/.exec(document.querySelector('[data-testid="start-message"]').textContent);
    return m && m[1] !== previous;
  }, runId, 'a second run should start');
  const slowId = /Run (\S+) started/.exec(await page.getByTestId('start-message').innerText())[1];
  await waitUntil(page, () => {
    const halt = document.querySelector('[data-testid="halt"]');
    return document.querySelector('[data-testid="run-status"]').textContent === 'running' && !halt.disabled;
  }, null, `run ${slowId} should show as running with Halt enabled`);
  await page.getByTestId('halt').click();
  await waitUntil(page, () => document.querySelector('[data-testid="run-status"]').textContent === 'canceled',
    null, `the halted run ${slowId} should end "canceled"`, RUN_MS);
  check(await page.getByTestId('halt').isDisabled(), 'Halt should be disabled once the run ended');
  check(await page.locator('[data-testid="column-done"] [data-testid="card-DEMO-2"]').count() === 0,
    'the halted run should not have finished DEMO-2');
  check(await page.getByTestId('error-banner').isHidden(),
    `the error banner shows: ${await page.getByTestId('error-banner').innerText().catch(() => '')}`);
  log(`run ${slowId} halted from the board: canceled`);
});
