// console.test.mjs: the console in headless Chromium against a real loopwise-ingest filled
// through its real endpoints (README "The console"): logging in with the keyboard, the session
// cookie's flags, no CSP violation under the strict policy, the funnel on the page equal to the
// dataset (Wilson intervals from the formula), the CSV download equal to the table beside the
// chart, a refused CSRF request, the review flow changing the reward list, and both widths
// (1280 px and 390 px). Screenshots go to $LW_ARTIFACTS (default build/artifacts/console).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { onPg, sql, startServer, tempDir } from '../ingest/helpers.mjs';
import { PASSWORD, consoleConfig, expected, expectedChannels, load, plan, rateBase, referee_, wilson } from '../ingest/console-fixture.mjs';
import { consoleLogin, consolePage, launchBrowser, root, requireBuilt, waitFor } from './helpers.mjs';

const artifacts = process.env.LW_ARTIFACTS || join(root, 'build/artifacts/console');
let server, rows, browser;

before(async () => {
  requireBuilt(join(root, 'web/console/dist/console.js'));
  mkdirSync(artifacts, { recursive: true });
  const dir = tempDir();
  server = await startServer({ dir, args: ['--config', consoleConfig(dir), '--rate-limit', 'off'] });
  rows = plan();
  await load(server, rows);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.cleanup();
});

async function open(width) {
  // Refused requests (the first session check before login, the CSRF probe) are expected;
  // anything else logged as an error (a script error, a CSP violation) is a problem.
  const { context, page, problems } = await consolePage(browser, width, /status of 40[13]/);
  await consoleLogin(page, server.url, PASSWORD);
  return { context, page, problems };
}

const cells = (page, table) => page.$$eval(`#table-${table} tbody tr`, (trs) => trs.map((tr) => {
  const row = { key: tr.dataset.key };
  for (const td of tr.querySelectorAll('td[data-col]')) {
    row[td.dataset.col] = td.dataset.lo !== undefined ? { rate: td.dataset.rate, lo: Number(td.dataset.lo), hi: Number(td.dataset.hi) } : td.textContent;
  }
  return row;
}));

test('the_console_shows_the_funnel_of_the_store_with_wilson_intervals_and_its_csv', async () => {
  const { context, page, problems } = await open(1280);
  try {
    assert.equal(await page.isHidden('#login'), true, 'the login form goes once logged in');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'lw_console');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read it');

    const stages = ['decisions', 'prompts', 'shares', 'landings', 'conversions', 'retained'];
    for (const [table, keyOf] of [['variants', (r) => r.variant], ['segments', (r) => r.segment]]) {
      const want = expected(rows, keyOf);
      const shown = await cells(page, table);
      assert.deepEqual(shown.map((r) => r.key).sort(), [...want.keys()].sort());
      for (const r of shown) {
        const w = want.get(r.key);
        for (const s of stages) assert.equal(Number(r[s]), w[s], `${table} ${r.key} ${s} on the page`);
        for (let i = 1; i < stages.length; i++) {
          const [lo, hi] = wilson(w[stages[i]], w[rateBase(stages, i)]);
          const got = r[`${stages[i]}_rate`];
          assert.ok(Math.abs(got.lo - lo) < 1e-9 && Math.abs(got.hi - hi) < 1e-9, `${table} ${r.key} ${stages[i]} interval`);
        }
      }
      // The chart beside the table is drawn (uPlot, bundled).
      assert.ok(await page.$(`#table-${table}`));
    }
    // The shared decisions by channel (their first share's), from the shares stage on.
    const byChannel = expectedChannels(rows), cstages = stages.slice(2);
    const channels = await cells(page, 'channels');
    assert.deepEqual(channels.map((r) => r.key), [...byChannel.keys()].sort(), 'every channel of the dataset');
    assert.ok(channels.length >= 3);
    for (const r of channels) {
      const w = byChannel.get(r.key);
      for (const s of cstages) assert.equal(Number(r[s]), w[s], `channel ${r.key} ${s} on the page`);
      assert.equal(r.decisions, undefined, 'no decisions column: a channel is a share\'s');
      assert.equal(Number(r.referred), w.referred);
      for (let i = 1; i < cstages.length; i++) {
        const [lo, hi] = wilson(w[cstages[i]], w[rateBase(cstages, i)]);
        const got = r[`${cstages[i]}_rate`];
        assert.ok(Math.abs(got.lo - lo) < 1e-9 && Math.abs(got.hi - hi) < 1e-9, `channel ${r.key} ${cstages[i]} interval`);
      }
    }
    if (!onPg) { // and the store's own rows (SQLite: the writer's rollup_funnel, per channel)
      const store = sql(server.db, "SELECT CASE channel WHEN '' THEN '(none)' ELSE channel END AS key, sum(shares) AS shares,"
        + ' sum(landed) AS landings, sum(converted) AS conversions, sum(kept) AS retained FROM rollup_funnel GROUP BY channel ORDER BY channel');
      assert.deepEqual(channels.map((r) => ({ key: r.key, ...Object.fromEntries(cstages.map((s) => [s, Number(r[s])])) })), store);
    }
    assert.ok((await page.$$('.chart canvas')).length >= 5, 'every table has its chart');
    const [chDownload] = await Promise.all([page.waitForEvent('download'), page.click('#csv-channels')]);
    const chCsv = readFileSync(await chDownload.path(), 'utf8').trim().split('\r\n').map((l) => l.split(','));
    assert.equal(chCsv.length - 1, channels.length);
    chCsv.slice(1).forEach((line, i) => {
      const row = Object.fromEntries(chCsv[0].map((h, j) => [h, line[j]]));
      assert.equal(row.key, channels[i].key);
      for (const s of cstages) assert.equal(row[s], channels[i][s]);
      assert.equal(row.decisions, undefined);
    });
    assert.match(await page.textContent('#method'), /Wilson/);

    // The CSV download equals the table beside it.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv-variants')]);
    const csv = readFileSync(await download.path(), 'utf8').trim().split('\r\n').map((l) => l.split(','));
    const head = csv[0];
    const shown = await cells(page, 'variants');
    assert.equal(csv.length - 1, shown.length);
    csv.slice(1).forEach((line, i) => {
      const row = Object.fromEntries(head.map((h, j) => [h, line[j]]));
      assert.equal(row.key, shown[i].key);
      for (const s of stages) assert.equal(row[s], shown[i][s]);
      for (const s of stages.slice(1)) {
        if (row[`${s}_lo`] === '') continue;
        assert.ok(Math.abs(Number(row[`${s}_lo`]) - shown[i][`${s}_rate`].lo) < 1e-6);
        assert.ok(Math.abs(Number(row[`${s}_hi`]) - shown[i][`${s}_rate`].hi) < 1e-6);
      }
      assert.equal(row.referred, shown[i].referred);
      assert.equal(Number(row.incentive_cost).toFixed(2), shown[i].incentive_cost);
    });

    // A write without the CSRF token is refused, even from the page's own origin.
    const status = await page.evaluate(async () => (await fetch('/console/api/reviews/1', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"decision":"approve"}' })).status);
    assert.equal(status, 403);

    await page.screenshot({ path: join(artifacts, 'funnel-1280.png'), fullPage: true });
    assert.deepEqual(problems, [], 'no script error or CSP violation');
  } finally {
    await context.close();
  }
});

test('approving_a_flagged_conversion_in_the_console_adds_it_to_the_reward_list', async () => {
  const code = 'W' + randomBytes(5).toString('hex').toUpperCase();
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await referee_(server, { v: 1, site: 'shop', code, referee: `${code}-${i}`, event: 'conversion' })).json);
  assert.equal(ids[2].state, 'flagged');
  const { context, page, problems } = await open(390);
  try {
    await page.click('#nav button[data-page="reviews"]');
    await page.waitForSelector('body[data-ready="reviews"]');
    const reward = () => page.textContent(`#rewards tr[data-code="${code}"] td[data-col="conversions"]`);
    assert.equal(await reward(), '2', 'the flagged one is held');
    assert.match(await page.textContent(`#reviews tr[data-id="${ids[2].id}"]`), /velocity/);
    await page.screenshot({ path: join(artifacts, 'reviews-390.png'), fullPage: true });
    // Approve it with the keyboard.
    await page.focus(`#reviews button[data-id="${ids[2].id}"][data-decision="approve"]`);
    await page.keyboard.press('Enter');
    await page.waitForFunction((id) => document.body.dataset.ready === 'reviews' && !document.querySelector(`#reviews tr[data-id="${id}"]`), ids[2].id);
    assert.equal(await reward(), '3');
    assert.match(await page.textContent('#review-status'), /Approved/);
    // Who decided and when, from the store: under "Decided" and in the action log.
    const decided = `#reviewed tr[data-ref="${ids[2].id}"]`;
    assert.equal(await page.textContent(`${decided} td[data-col="user"]`), 'pm');
    assert.equal(await page.textContent(`${decided} td[data-col="action"]`), 'approve');
    assert.match(await page.textContent(`${decided} td[data-col="at"]`), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page fits 390 px (overflow ${overflow} px)`);
    await page.focus('#nav button[data-page="actions"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-ready="actions"]');
    const logged = `#actions tr[data-target="review"][data-ref="${ids[2].id}"]`;
    assert.equal(await page.textContent(`${logged} td[data-col="user"]`), 'pm');
    assert.equal(await page.textContent(`${logged} td[data-col="action"]`), 'approve');
    const stored = (await page.evaluate(async () => (await (await fetch('/console/api/actions')).json()).actions))
      .find((a) => a.target === 'review' && a.ref === ids[2].id);
    assert.equal(await page.textContent(`${logged} td[data-col="at"]`), new Date(stored.at).toISOString().replace('T', ' ').slice(0, 19));
    await page.screenshot({ path: join(artifacts, 'actions-390.png'), fullPage: true });
    const overflow2 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow2 <= 0, `the action log fits 390 px (overflow ${overflow2} px)`);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('a_failed_webhook_is_sent_again_from_the_delivery_log', { timeout: 120000 }, async () => {
  let down = true;
  const posts = [];
  const hook = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { posts.push(req.headers['idempotency-key']); res.writeHead(down ? 503 : 200).end(); });
  });
  await new Promise((ok) => hook.listen(0, '127.0.0.1', ok));
  const dir = tempDir();
  const hooked = await startServer({ dir, args: ['--config', consoleConfig(dir, {
    webhook_url: `http://127.0.0.1:${hook.address().port}/`, webhook_secret: 'webhook-secret-0123456789abcdef0123',
    webhook_poll_ms: 20, webhook_retry_s: 1, webhook_max_age_s: 1, webhook_lease_s: 30, webhook_timeout_s: 5 }), '--rate-limit', 'off'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const code = 'D' + randomBytes(5).toString('hex').toUpperCase();
    assert.equal((await referee_(hooked, { v: 1, site: 'shop', code, referee: 'd-1', event: 'conversion' })).status, 200);
    const page = await context.newPage();
    await page.goto(`${hooked.url}/console`);
    await page.waitForSelector('body[data-ready="login"]');
    await page.fill('#login input[name="name"]', 'pm');
    await page.fill('#login input[name="password"]', PASSWORD);
    await page.click('#login button[type="submit"]');
    await page.waitForSelector('body[data-ready="funnel"]');
    // Wait (on the server's own log) until the sender has given up on the delivery.
    const states = async () => page.evaluate(async () => (await (await fetch('/console/api/deliveries')).json()).deliveries.map((d) => d.state));
    await waitFor('a failed delivery', async () => (await states()).includes('failed'), 30000);
    await page.click('#nav button[data-page="deliveries"]');
    await page.waitForSelector('body[data-ready="deliveries"] #deliveries tr[data-state="failed"]');
    await page.screenshot({ path: join(artifacts, 'deliveries-1280.png'), fullPage: true });
    down = false;
    await page.click('#deliveries button[data-resend]');
    await page.waitForSelector('body[data-ready="deliveries"]');
    assert.match(await page.textContent('#deliveries-status'), /sent again/);
    await waitFor('the delivery sent again', async () => (await states()).includes('delivered'), 30000);
    await page.click('#nav button[data-page="reviews"]');
    await page.waitForSelector('body[data-ready="reviews"]');
    await page.click('#nav button[data-page="deliveries"]');
    await page.waitForSelector('body[data-ready="deliveries"] #deliveries tr[data-state="delivered"]');
    assert.equal(posts.at(-1), posts[0], 'the same idempotency key when sent again');
    // Who sent it again and when, in the delivery log and the action log.
    assert.match(await page.textContent('#deliveries tr[data-state="delivered"] td[data-col="resent"]'), /^pm, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    await page.screenshot({ path: join(artifacts, 'deliveries-resent-1280.png'), fullPage: true });
    await page.click('#nav button[data-page="actions"]');
    await page.waitForSelector('body[data-ready="actions"] #actions tr[data-target="delivery"]');
    assert.equal(await page.textContent('#actions tr[data-target="delivery"] td[data-col="action"]'), 'resend');
    assert.equal(await page.textContent('#actions tr[data-target="delivery"] td[data-col="user"]'), 'pm');
    await page.screenshot({ path: join(artifacts, 'actions-1280.png'), fullPage: true });
  } finally {
    await context.close();
    await hooked.cleanup();
    await new Promise((ok) => hook.close(ok));
  }
});
