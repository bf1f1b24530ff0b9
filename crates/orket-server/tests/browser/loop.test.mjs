// The organization loop's status line on the board, in headless Chromium against a running
// `orket serve` whose project is a copy of demo/.
//
//   node loop.test.mjs <board url> <api key> <screenshot.png> [replay file]
//
// The line says no loop runs; a loop started over the API (POST /v1/loop/start, replayed)
// shows live — through the WebSocket's loop events, without a reload — as running, then as
// having worked the demo's three cards and gone idle; stopped over the API it shows
// `stopped canceled`. A full-page screenshot goes to <screenshot.png>. Exit codes as in
// lib.mjs.

import { RUN_MS, check, keyedUrl, main, waitLive, waitUntil, watchPage } from './lib.mjs';

await main('loop', async ({ context, args, log, problems, setPage }) => {
  const { boardUrl, apiKey, screenshotPath, replayFile } = args;
  const page = await context.newPage();
  setPage(page);
  watchPage(page, problems);
  await page.goto(keyedUrl(boardUrl, apiKey), { waitUntil: 'load' });
  await waitLive(page);
  const line = () => document.querySelector('[data-testid="loop-status"]').textContent;
  await waitUntil(page, () => /^loop: not running$/.test(
    document.querySelector('[data-testid="loop-status"]').textContent,
  ), null, 'with no loop the status line should say "loop: not running"');
  await page.evaluate(() => { window.__orketMarker = 'same-page'; });

  const post = (path, body) => fetch(new URL(path, boardUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify(body),
  });
  const started = await post('/v1/loop/start', { provider: 'replay', replay: replayFile, idle_sleep: 1, concurrency: 1 });
  const answer = await started.text();
  check(started.status === 202, `POST /v1/loop/start answered ${started.status}: ${answer}`);
  const { id } = JSON.parse(answer);
  log(`loop ${id} started over the API`);

  await waitUntil(page, (loopId) => {
    const el = document.querySelector('[data-testid="loop-status"]');
    return el.dataset.state === 'running' && el.textContent.startsWith(`loop ${loopId}: 3 cards`)
      && /nothing is ready: sleeping 1 s between looks/.test(el.textContent);
  }, id, 'the status line should show the loop with 3 cards done and idle', RUN_MS);
  log(`idle: ${await page.evaluate(line)}`);
  await page.screenshot({ path: screenshotPath, fullPage: true });

  const stopped = await post('/v1/loop/stop', {});
  check(stopped.status === 202, `POST /v1/loop/stop answered ${stopped.status}`);
  await waitUntil(page, (loopId) => {
    const el = document.querySelector('[data-testid="loop-status"]');
    return el.dataset.state === 'stopped' && el.textContent.startsWith(`loop ${loopId} stopped canceled`);
  }, id, 'the status line should show the loop stopped canceled');
  log(`stopped: ${await page.evaluate(line)}`);
  check(await page.evaluate(() => window.__orketMarker) === 'same-page', 'the page was reloaded');
  check(problems.length === 0, problems.join('\n'));
});
