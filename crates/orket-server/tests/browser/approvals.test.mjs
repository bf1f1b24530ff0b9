// The board's approvals in headless Chromium against a running `orket serve` whose project is a
// copy of demo/ with `process_rules.approval_required: ["write_file"]`.
//
//   node approvals.test.mjs <board url> <api key> <screenshot.png> [replay file]
//
// A replayed run of `hello_cli` parks the write_file calls of DEMO-1 and DEMO-3: both cards
// move to "Waiting for developer" (waiting for input) and both calls show as pending approvals
// with their arguments. The test approves DEMO-1's (the card goes back to in progress) and
// rejects DEMO-3's with a reason (the card goes back to ready); the decisions show on the board
// without a reload. A full-page screenshot goes to <screenshot.png>. Exit codes as in lib.mjs.

import {
  RUN_MS, check, expectState, keyedUrl, main, waitLive, waitUntil, watchPage,
} from './lib.mjs';

await main('approvals', async ({ context, args, log, problems, setPage }) => {
  const { boardUrl, apiKey, screenshotPath, replayFile } = args;
  const page = await context.newPage();
  setPage(page);
  watchPage(page, problems);
  await page.goto(keyedUrl(boardUrl, apiKey), { waitUntil: 'load' });
  await page.evaluate(() => {
    window.__orketMarker = 'same-page';
  });
  await waitLive(page);

  await page.getByTestId('start-target').fill('hello_cli');
  await page.getByTestId('start-provider').selectOption('replay');
  await page.getByTestId('start-replay').fill(replayFile);
  await page.getByTestId('start-delay').fill('200');
  await page.getByTestId('start-run').click();
  await waitUntil(page, () => /Run \S+ started/.test(document.querySelector('[data-testid="start-message"]').textContent),
    null, 'the start form should report "Run <id> started"');
  log(await page.getByTestId('start-message').innerText());

  const pending = (issue) => page.locator(`[data-testid^="approval-"][data-issue-id="${issue}"][data-status="pending"]`);
  for (const issue of ['DEMO-1', 'DEMO-3']) {
    await expectState(pending(issue), 'visible', `a pending approval for ${issue}'s write_file should appear`, RUN_MS);
    await expectState(page.locator(`[data-testid="column-waiting_for_developer"] [data-testid="card-${issue}"]`), 'attached',
      `card ${issue} should wait in "Waiting for developer" for the decision`);
  }
  const demo1Text = await pending('DEMO-1').innerText();
  check(/write_file/.test(demo1Text) && /hello\.py/.test(demo1Text),
    `the approval should show the tool and its arguments; it shows: ${demo1Text}`);
  // The card moves on the status_change event; its wait reason arrives with the refetch.
  await waitUntil(page, () => /waits for\s+input/.test(document.querySelector('[data-testid="card-DEMO-1"]')?.innerText ?? ''),
    null, 'card DEMO-1 should say it waits for input');
  await waitUntil(page, () => document.querySelector('[data-testid="run-status"]').textContent === 'stalled',
    null, 'with both writes parked and DEMO-2 waiting for DEMO-1, the run should end "stalled"', RUN_MS);
  await waitUntil(page, () => [...document.querySelectorAll('[data-testid="timeline"] [data-testid="refusal-code"]')]
      .filter((e) => e.textContent.includes('APPROVAL_REQUIRED')).length >= 2,
    null, 'the timeline should show the parked calls with the code APPROVAL_REQUIRED');
  log('both write_file calls parked; the run stalled');

  await pending('DEMO-1').getByRole('button', { name: 'Approve' }).click();
  await expectState(page.locator('[data-testid^="approval-"][data-issue-id="DEMO-1"][data-status="approved"]'), 'visible',
    'DEMO-1\'s approval should show as approved');
  await expectState(page.locator('[data-testid="column-in_progress"] [data-testid="card-DEMO-1"]'), 'attached',
    'after the approval, card DEMO-1 should be back in progress');

  const reject = pending('DEMO-3');
  await reject.getByLabel('Reason').fill('Not now: the notes can wait.');
  await reject.getByRole('button', { name: 'Reject' }).click();
  const rejected = page.locator('[data-testid^="approval-"][data-issue-id="DEMO-3"][data-status="rejected"]');
  await expectState(rejected, 'visible', 'DEMO-3\'s approval should show as rejected');
  check(/Not now/.test(await rejected.innerText()), 'the rejected approval should show its reason');
  await expectState(page.locator('[data-testid="column-ready"] [data-testid="card-DEMO-3"]'), 'attached',
    'after the rejection, card DEMO-3 should be back in ready');
  check(await page.getByTestId('approvals-empty').isHidden(), 'decided approvals stay listed');
  log('DEMO-1 approved (back in progress), DEMO-3 rejected (back in ready)');

  check(await page.evaluate(() => window.__orketMarker) === 'same-page', 'the page was reloaded');
  check(await page.getByTestId('error-banner').isHidden(),
    `the error banner shows: ${await page.getByTestId('error-banner').innerText().catch(() => '')}`);
  await page.screenshot({ path: screenshotPath, fullPage: true });
  log(`screenshot: ${screenshotPath}`);
});
