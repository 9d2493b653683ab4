// console-sim.test.mjs: the console in headless Chromium over a store the simulator filled
// through the real ingest server (loopwise-sim --policy learning --via-ingest: every engine's
// wire batches and the host's referee reports POSTed to an in-process loopwise-ingest), not a
// hand-made dataset. The funnel on the page (per variant and per segment: decisions, prompts,
// shares, landings, conversions, retained) equals a plain walk of the store's events and referee
// reports in SQL, written here without the writer's rollups or its join code, and the channels
// table equals the walk per first share channel. Screenshot to $LW_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sql, startServer, tempDir } from '../ingest/helpers.mjs';
import { CONSOLE_SECRET, PASSWORD, hashPassword } from '../ingest/console-fixture.mjs';
import { consoleLogin, consolePage, launchBrowser, root, requireBuilt } from './helpers.mjs';

const artifacts = process.env.LW_ARTIFACTS || join(root, 'build/artifacts/console');
const sim = resolve(root, process.env.LW_NATIVE_DIR || 'build/native', 'src/tools/loopwise-sim');
let server, browser, db;

// The walk: each decision row with the stages it reached. A share stage is a share or copy
// record of the decision; a landing carries one of its shares' tokens; a conversion is a counted
// (or approved) referee conversion reported with such a token; retained is that referee's
// retained_30 report. A decision without a segment (or a share without a channel) is the
// console's '(none)'.
const WALK = `WITH d AS (SELECT site, decision, action, segment FROM events WHERE kind = 'decision'),
 s AS (SELECT DISTINCT site, decision, token FROM events WHERE kind IN ('share', 'copy')),
 c AS (SELECT site, code, referee, token FROM referees WHERE event = 'conversion' AND state IN ('counted', 'approved')),
 r AS (SELECT site, code, referee FROM referees WHERE event = 'retained_30'),
 f AS (SELECT d.action, d.segment,
   (SELECT channel FROM events e WHERE e.kind IN ('share', 'copy') AND e.site = d.site AND e.decision = d.decision ORDER BY e.id LIMIT 1) AS channel,
   d.action != 'none' AS prompts,
   EXISTS(SELECT 1 FROM s WHERE s.site = d.site AND s.decision = d.decision) AS shares,
   EXISTS(SELECT 1 FROM s JOIN events l ON l.kind = 'landing' AND l.site = s.site AND l.token = s.token
          WHERE s.site = d.site AND s.decision = d.decision) AS landings,
   EXISTS(SELECT 1 FROM s JOIN c ON c.site = s.site AND c.token = s.token WHERE s.site = d.site AND s.decision = d.decision) AS conversions,
   EXISTS(SELECT 1 FROM s JOIN c ON c.site = s.site AND c.token = s.token JOIN r ON r.site = c.site AND r.code = c.code
          AND r.referee = c.referee WHERE s.site = d.site AND s.decision = d.decision) AS retained
  FROM d)`;
const STAGES = ['decisions', 'prompts', 'shares', 'landings', 'conversions', 'retained'];
const walk = (by, where = '') => new Map(sql(db, `${WALK} SELECT coalesce(nullif(${by}, ''), '(none)') AS key, count(*) AS decisions, sum(prompts) AS prompts,
  sum(shares) AS shares, sum(landings) AS landings, sum(conversions) AS conversions, sum(retained) AS retained
  FROM f ${where} GROUP BY 1`).map((row) => [String(row.key), row]));

before(async () => {
  requireBuilt(join(root, 'web/console/dist/console.js'));
  requireBuilt(sim);
  mkdirSync(artifacts, { recursive: true });
  const dir = tempDir();
  const run = spawnSync(sim, ['--policy', 'learning', '--via-ingest', '--config', join(root, 'models/referral.json'),
    '--users', '300', '--days', '60', '--seed', '3', '--workdir', dir, '--quiet'], { encoding: 'utf8' });
  assert.equal(run.status, 0, `loopwise-sim: ${run.stderr}`);
  db = join(dir, 'sim-outcomes.db');
  const config = join(dir, 'ingest.json');
  writeFileSync(config, JSON.stringify({
    sites: [{ id: 'default', write_key: 'sim-key', origins: ['http://localhost:*'] }],
    console_users: `pm:${hashPassword(PASSWORD)}`, console_secret: CONSOLE_SECRET,
    console_config: join(root, 'models/referral.json'),
  }));
  server = await startServer({ dir, db, sqlite: true, args: ['--config', config, '--rate-limit', 'off'] });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.cleanup();
});

const cells = (page, table) => page.$$eval(`#table-${table} tbody tr`, (trs) => trs.map((tr) => {
  const row = { key: tr.dataset.key };
  for (const td of tr.querySelectorAll('td[data-col]')) if (td.dataset.lo === undefined) row[td.dataset.col] = td.textContent;
  return row;
}));

test('the_console_over_a_store_the_simulator_filled_shows_the_funnel_a_walk_of_the_store_gives', async () => {
  const { context, page, problems } = await consolePage(browser, 1280);
  try {
    await consoleLogin(page, server.url, PASSWORD);

    for (const [table, by] of [['variants', 'action'], ['segments', 'segment']]) {
      const want = walk(by);
      const shown = await cells(page, table);
      assert.deepEqual(shown.map((r) => r.key).sort(), [...want.keys()].sort(), `${table}: the store's keys`);
      for (const r of shown) for (const s of STAGES) assert.equal(Number(r[s]), want.get(r.key)[s], `${table} ${r.key} ${s}`);
    }
    // The simulated referees went the whole way, so the comparison covers every stage.
    const total = [...walk('1').values()][0];
    for (const s of STAGES) assert.ok(total[s] > 0, `the simulated store has ${s} (${total[s]})`);

    const byChannel = walk('channel', 'WHERE shares');
    const channels = await cells(page, 'channels');
    assert.deepEqual(channels.map((r) => r.key).sort(), [...byChannel.keys()].sort(), 'every channel the simulator shared by');
    for (const r of channels) for (const s of STAGES.slice(2)) assert.equal(Number(r[s]), byChannel.get(r.key)[s], `channel ${r.key} ${s}`);

    await page.screenshot({ path: join(artifacts, 'funnel-simulated-1280.png'), fullPage: true });
    assert.deepEqual(problems, [], 'no script error or CSP violation');
  } finally {
    await context.close();
  }
});
