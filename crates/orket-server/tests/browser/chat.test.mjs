// The board's operations-lead chat in headless Chromium against a running `orket serve` whose
// project is a copy of demo/ with `replay/driver.jsonl`: first a recorded create_epic for
// `docs_site`, then a create_issue with a seat the team does not have.
//
//   node chat.test.mjs <board url> <api key> <screenshot.png> [replay file, unused]
//
// The first message shows the action and the file written (model/core/epics/docs_site.json);
// the second (the replay file is read from its start on every request, so it is answered by a
// file holding only the refused reply, replay/driver_refused.jsonl) shows the refusal naming
// the seat. Both lines stay in the conversation. A full-page screenshot goes to
// <screenshot.png>. Exit codes as in lib.mjs.

import { check, keyedUrl, main, waitLive, waitUntil, watchPage } from './lib.mjs';

await main('chat', async ({ context, args, log, problems, setPage }) => {
  const { boardUrl, apiKey, screenshotPath } = args;
  const page = await context.newPage();
  setPage(page);
  // The refused action is answered 422 on purpose.
  watchPage(page, problems, {
    allowed: (text, url) => /status of 422/.test(text) && url.endsWith('/v1/system/chat-driver'),
  });
  await page.goto(keyedUrl(boardUrl, apiKey), { waitUntil: 'load' });
  await waitLive(page);

  await page.getByTestId('start-provider').selectOption('replay');
  await page.getByTestId('chat-replay').fill('replay/driver.jsonl');
  await page.getByTestId('chat-message').fill('Create an epic named docs_site for team demo_team');
  await page.getByTestId('chat-send').click();
  await waitUntil(page, () => {
    const line = document.querySelector('[data-testid="chat-log"] li[data-kind="lead"]');
    return line && /model\/core\/epics\/docs_site\.json/.test(line.textContent);
  }, null, 'the answer should name the file written (model/core/epics/docs_site.json)');
  const applied = await page.locator('[data-testid="chat-log"] li[data-kind="lead"]').innerText();
  check(/^create_epic: created epic docs_site/.test(applied), `the answer should name the action; it says: ${applied}`);
  log(`applied: ${applied.replace(/\n/g, ' | ')}`);

  await page.getByTestId('chat-replay').fill('replay/driver_refused.jsonl');
  await page.getByTestId('chat-message').fill('Add a QA issue to hello_cli');
  await page.getByTestId('chat-send').click();
  await waitUntil(page, () => document.querySelector('[data-testid="chat-log"] li[data-kind="refused"]'),
    null, 'the refused action should show in the conversation');
  const refused = await page.locator('[data-testid="chat-log"] li[data-kind="refused"]').innerText();
  check(/create_issue: seat: "qa" is not a seat of team "demo_team"/.test(refused),
    `the refusal should name the seat; it says: ${refused}`);
  const lines = await page.locator('[data-testid="chat-log"] li').count();
  check(lines === 4, `two messages and two answers should be shown, found ${lines}`);
  log(`refused: ${refused}`);

  await page.screenshot({ path: screenshotPath, fullPage: true });
});
