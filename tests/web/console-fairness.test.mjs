// console-fairness.test.mjs: the console's fairness audit page in headless Chromium against a
// real loopwise-ingest holding a known dataset (tests/ingest/console-fixture.mjs): reached with
// the keyboard only, its table equal to the server's audit (rates, intervals, flags), the CSV
// download equal to the table beside the chart, no CSP violation, and both widths (1280 px and
// 390 px). Screenshots go to $LW_ARTIFACTS (default build/artifacts/console).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { onPg, sql, startServer, tempDir } from '../ingest/helpers.mjs';
import { FAIRNESS_FLAGS, FAIRNESS_PLAN, PASSWORD, consoleConfig, loadFairness, wilson } from '../ingest/console-fixture.mjs';
import { consoleLogin, consolePage, launchBrowser, root, requireBuilt } from './helpers.mjs';

const artifacts = process.env.LW_ARTIFACTS || join(root, 'build/artifacts/console');
let server, browser;

before(async () => {
  requireBuilt(join(root, 'web/console/dist/console.js'));
  mkdirSync(artifacts, { recursive: true });
  const dir = tempDir();
  server = await startServer({ dir, args: ['--config', consoleConfig(dir), '--rate-limit', 'off'] });
  await loadFairness(server);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.cleanup();
});

for (const width of [1280, 390]) {
  test(`the_fairness_audit_page_at_${width}px_shows_the_audit_and_its_csv_reached_by_keyboard`, async () => {
    const { context, page, problems } = await consolePage(browser, width);
    try {
      await consoleLogin(page, server.url, PASSWORD);
      // Tab along the page's navigation to the fairness button, then Enter.
      await page.focus('#nav button[data-page="funnel"]');
      for (let i = 0; i < 10 && !(await page.evaluate(() => document.activeElement?.dataset.page === 'fairness')); i++)
        await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.page), 'fairness', 'reachable with Tab');
      await page.keyboard.press('Enter');
      await page.waitForSelector('body[data-ready="fairness"]');

      const rows = await page.$$eval('#fairness tbody tr', (trs) => trs.map((tr) => {
        const row = { key: tr.dataset.key, flagged: tr.dataset.flagged };
        for (const td of tr.querySelectorAll('td[data-col]'))
          row[td.dataset.col] = td.dataset.lo !== undefined ? { lo: Number(td.dataset.lo), hi: Number(td.dataset.hi) } : td.textContent;
        return row;
      }));
      assert.deepEqual(rows.map((r) => r.key), Object.keys(FAIRNESS_PLAN).map((v) => `plan^${v}`));
      for (const r of rows) {
        const value = r.key.split('^')[1], [n, prompts, shares] = FAIRNESS_PLAN[value];
        assert.deepEqual([r.decisions, r.prompts, r.shares].map(Number), [n, prompts, shares], value);
        const [lo, hi] = wilson(prompts, n);
        assert.ok(Math.abs(r.exposure_rate.lo - lo) < 1e-9 && Math.abs(r.exposure_rate.hi - hi) < 1e-9, `${value} exposure interval`);
        assert.equal(r.flagged, String(FAIRNESS_FLAGS[value].length > 0));
        for (const f of FAIRNESS_FLAGS[value]) assert.match(r.flags, new RegExp(f), `${value} flagged on ${f}`);
      }
      // And equal to the store's own rows (SQLite: the writer's rollups, a bit per value in
      // the config's order; PostgreSQL walks, checked against the dataset above).
      if (!onPg)
        rows.forEach((r, i) => assert.equal(Number(r.decisions),
          sql(server.db, `SELECT coalesce(sum(decisions), 0) AS n FROM rollup_days WHERE fair & ${1 << i}`)[0].n, `${r.key} in the store`));
      assert.ok(await page.$('#fairness-chart canvas'), 'the chart beside the table is drawn');

      // The CSV download (reached with the keyboard too) equals the table.
      await page.focus('#csv-fairness');
      const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
      const csv = readFileSync(await download.path(), 'utf8').trim().split('\r\n').map((l) => l.split(','));
      assert.equal(csv.length - 1, rows.length);
      csv.slice(1).forEach((line, i) => {
        const row = Object.fromEntries(csv[0].map((h, j) => [h, line[j]]));
        assert.equal(row.key, rows[i].key);
        assert.equal(row.decisions, rows[i].decisions);
        assert.equal(row.flagged === '1', rows[i].flagged === 'true');
      });

      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page fits ${width} px (overflow ${overflow} px)`);
      await page.screenshot({ path: join(artifacts, `fairness-${width}.png`), fullPage: true });
      assert.deepEqual(problems, [], 'no script error or CSP violation');
    } finally {
      await context.close();
    }
  });
}
