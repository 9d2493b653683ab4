// referee.test.mjs: a referee's retained conversion joins, by the per-share token, to the decision
// whose share produced it (issue 11), end to end: the shipped web/dist in Chromium against a
// real ingest server, the demo's stand-in host backend (web/demo/backend.mjs) reporting with the
// site's secret key, and the store's read API as the trainer gets it (lw-store-decisions,
// tests/tools/store_decisions_main.c: lw_store_decisions_within).
//
//   node --test tests/web/referee.test.mjs      (after: bash src/scripts/build.sh)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  daytimeZone, dist, freePort, ingestBin, launchBrowser, nativeDir, prompting, requireBuilt, root, shipped, sql, startBackend,
  startDemo, startIngest, tempDir, waitFor,
} from './helpers.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';

const distDir = process.env.LW_WEB_DIST || dist;
const reader = join(nativeDir, 'tests/tools/lw-store-decisions');
const trainer = join(nativeDir, 'src/tools/loopwise-train');
requireBuilt(join(distDir, 'loopwise.js'), join(distDir, 'loopwise.wasm'), ingestBin, reader, trainer);
// Every project_completed is a decision point that prompts (no holdout, caps, quiet hours or
// "not now" exploration in the way).
const cfg = (over = {}) => prompting({
  holdout: 0, quiet_hours: undefined, approval: undefined,
  milestones: [{ event: 'project_completed', after: 1, every: 1 }],
  caps: { max_prompts: 1000, window_days: 30, min_gap_hours: 0 }, ...over,
});
const DIALOG = 'loopwise-prompt [role=dialog]';
const SECRET = 'referee-secret-' + Math.random().toString(36).slice(2).padEnd(12, '0');

let browser, demo, ingest, backend, tmp;
const contexts = [];
before(async () => {
  tmp = tempDir();
  browser = await launchBrowser();
  demo = await startDemo(distDir);
  const config = join(tmp.dir, 'ingest.json');
  writeFileSync(config, JSON.stringify({ sites: [{ id: 'default', write_key: 'demo-site-key',
    origins: ['http://127.0.0.1:*', 'http://localhost:*'], secret_keys: [SECRET] }] }));
  ingest = await startIngest(join(tmp.dir, 'referee.db'), await freePort(), ['--config', config]);
  backend = await startBackend(ingest.base, SECRET);
});
after(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  await browser?.close();
  await demo?.stop();
  await backend?.stop();
  await ingest?.stop();
  tmp?.remove();
});

// A fresh device (its own storage) with config c, on the demo page with `query` added.
// `init` runs in every page before its scripts.
async function device(c, { query = '', init } = {}) {
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  contexts.push(ctx);
  await ctx.route(demo.url + 'dist/loopwise.lwm', (r) => r.fulfill({ status: 200, body: '' }));
  await ctx.route(demo.url + 'dist/t.lwc', (r) => r.fulfill({ contentType: 'application/octet-stream', body: Buffer.from(compileConfig(c)) }));
  if (init) await ctx.addInitScript(init);
  const page = await ctx.newPage();
  page.errors = [];
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  await page.goto(`${demo.url}?endpoint=${encodeURIComponent(ingest.base)}&config=/dist/t.lwc&backend=${encodeURIComponent(backend.url)}${query}`);
  assert.equal(await page.evaluate(() => window.Loopwise.ready), true, 'started: ' + JSON.stringify(page.errors));
  return page;
}
const call = (page, name, ...args) => page.evaluate(([n, a]) => window.Loopwise[n](...a), [name, args]);
// The referee's device opens the share link: its query on the demo page (the link's host is the
// config's example site; what matters is what its URL carries).
const opens = (link, c, opts) => device(c, { ...opts, query: '&' + new URL(link).search.slice(1) });
// A referrer's device shares through the share sheet (a navigator.share that records what it was
// given: Chromium on Linux has none); resolves to { decision, link } once the share is stored.
async function shares(c) {
  const page = await device(c, { init: () => { navigator.share = async (data) => { window.lwShared = data; }; } });
  const shared = page.evaluate(() => new Promise((ok) => window.Loopwise.on('shared', ok)));
  await call(page, 'track', 'project_completed');
  await page.locator(DIALOG).waitFor();
  const decision = (await call(page, 'explain')).id;
  await page.locator('loopwise-prompt').getByRole('button', { name: 'Share' }).click();
  const ev = await shared;
  const link = await page.evaluate(() => window.lwShared.url);
  await waitFor('the share stored', () => sql(ingest.db, `SELECT 1 FROM events WHERE kind = 'share' AND decision = '${decision}'`).length);
  return { page, decision, link, ev };
}
// What the host backend answers for a report, as the ingest server said it.
const report = async (path, body) => {
  const r = await fetch(backend.url + path, { method: 'POST', body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
};
// The decisions as the trainer reads them (lw_store_decisions_within), keyed by decision id.
const decisions = () => Object.fromEntries(execFileSync(reader, [ingest.db, 'default'], { encoding: 'utf8' })
  .trim().split('\n').filter(Boolean).map((line) => {
    const d = Object.fromEntries(line.split(' ').map((kv) => kv.split('=')));
    return [d.decision, d];
  }));

describe('per-share tokens', () => {
  test('a_referees_retained_conversion_joins_by_token_to_the_decision_whose_share_produced_it', async () => {
    const c = cfg();
    const { decision, link, ev } = await shares(c);
    // The link carries the code and the token (the shipped share.url has no {token}: lwt=).
    const url = new URL(link);
    const code = url.searchParams.get('ref'), token = url.searchParams.get('lwt');
    assert.match(code, /^[A-Z0-9]{6,16}$/);
    assert.match(token, /^[0-9a-f]{32}$/);
    assert.deepEqual(ev, { decision, kind: 'share', token, channel: 'native' }, "the 'shared' event carries the link's token and the channel");
    const share = sql(ingest.db, `SELECT code, token, channel FROM events WHERE kind = 'share' AND decision = '${decision}'`);
    assert.deepEqual(share, [{ code, token, channel: 'native' }], 'the share record carries the link token and the native channel');

    // A second browser context: the referee opens the link; its landing carries code and token,
    // and the page can read both for its backend.
    const referee = await opens(link, c);
    assert.deepEqual(await call(referee, 'referral'), { code, token });
    await waitFor('the landing stored with the token', () => sql(ingest.db,
      `SELECT 1 FROM events WHERE kind = 'landing' AND code = '${code}' AND token = '${token}'`).length);

    // The referee signs up (the demo's button: the host backend reports the conversion with the
    // secret key and the token), and 30 days later the host reports them still active.
    await referee.getByRole('button', { name: /Sign up/ }).click();
    await waitFor('the host backend answered', () => referee.evaluate(() => document.body.dataset.signup));
    assert.equal(await referee.evaluate(() => document.body.dataset.signup), 'counted');
    const user = await referee.evaluate(() => sessionStorage.getItem('acme:user'));
    const retained = await report('/report', { code, token, user, event: 'retained_30' });
    assert.equal(retained.status, 200, JSON.stringify(retained.body));
    // The public write key (in every page) is refused there: only the host's secret key reports.
    const forged = await fetch(ingest.base + '/v1/referees', { method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer demo-site-key' },
      body: JSON.stringify({ v: 2, site: 'default', code, token, referee: user, event: 'retained_90' }) });
    assert.equal(forged.status, 403);
    assert.deepEqual(sql(ingest.db, `SELECT event, token FROM referees WHERE code = '${code}' ORDER BY id`),
      [{ event: 'conversion', token }, { event: 'retained_30', token }]);

    // The trainer's input: the sharing decision, joined by token, with the landing, the
    // conversion and the 30-day retention.
    const d = decisions()[decision];
    assert.ok(d, `decision ${decision} read from the store`);
    assert.deepEqual({ shared: d.shared, join: d.join, landings: d.landings, conversions: d.conversions, retained_30: d.retained_30 },
      { shared: '1', join: 'token', landings: '1', conversions: '1', retained_30: '1' });
    // And the trainer takes them as its labels: retained value, not the shares fallback, with
    // every attribution window closed (its clock a year on).
    const program = join(tmp.dir, 'program.json');
    writeFileSync(program, JSON.stringify(c));
    const out = execFileSync(trainer, ['--data', ingest.db, '--config', program, '--out', join(tmp.dir, 'm.lwm'),
      '--now', String(Date.now() + 365 * 86400000), '--quiet'], { encoding: 'utf8' });
    assert.match(out, /^labels=retained\b[^\n]* left_out_open_window=0$/m, out);
    assert.doesNotMatch(out, /no referee outcomes/, out);
  });

  test('a_link_whose_url_has_a_token_placeholder_carries_it_there_and_a_copy_says_channel_copy', async () => {
    const c = cfg({ share: { ...shipped.share, url: 'https://acme.example/join/{code}?t={token}#welcome' } });
    const page = await device(c);
    await call(page, 'track', 'project_completed');
    await page.locator(DIALOG).waitFor();
    const decision = (await call(page, 'explain')).id;
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: demo.url });
    await page.locator('loopwise-prompt').getByRole('button', { name: 'Copy link' }).click();
    await waitFor('the copy stored', () => sql(ingest.db, `SELECT 1 FROM events WHERE kind = 'copy' AND decision = '${decision}'`).length);
    const link = await page.evaluate(() => navigator.clipboard.readText());
    const [row] = sql(ingest.db, `SELECT code, token, channel FROM events WHERE kind = 'copy' AND decision = '${decision}'`);
    assert.equal(link, `https://acme.example/join/${row.code}?t=${row.token}#welcome`);
    assert.equal(row.channel, 'copy');
  });

  test('a_referee_landing_without_consent_stores_nothing_but_the_page_still_reads_the_link', async () => {
    const c = cfg();
    const { link } = await shares(c);
    const url = new URL(link);
    const code = url.searchParams.get('ref'), token = url.searchParams.get('lwt');
    // Consent required and not given: the landing is not a record. (The link is the page's own
    // URL: referral() only reads it, for the host's backend.)
    const referee = await opens(link, cfg({ consent: { required: true, default: false } }));
    assert.deepEqual(await call(referee, 'referral'), { code, token });
    // Then consent and a decision: once that decision is stored, everything sent is, and the
    // landing made before consent must not be among it.
    await call(referee, 'consent', true);
    await call(referee, 'busy', true);
    const d = await call(referee, 'track', 'project_completed');
    await waitFor('the decision after consent stored', () => sql(ingest.db, `SELECT 1 FROM events WHERE decision = '${d.id}'`).length);
    assert.deepEqual(sql(ingest.db, `SELECT kind FROM events WHERE kind = 'landing' AND token = '${token}'`), []);
  });

  test('a_landing_with_a_damaged_token_still_counts_for_the_code_without_the_token', async () => {
    const c = cfg();
    const code = 'DMG' + Math.random().toString(36).slice(2, 9).toUpperCase().replace(/[^A-Z0-9]/g, 'X');
    const referee = await device(c, { query: `&ref=${code}&lwt=NOT-A-TOKEN` });
    await waitFor('the landing stored', () => sql(ingest.db, `SELECT 1 FROM events WHERE kind = 'landing' AND code = '${code}'`).length);
    assert.deepEqual(sql(ingest.db, `SELECT token FROM events WHERE kind = 'landing' AND code = '${code}'`), [{ token: null }]);
    assert.deepEqual(await call(referee, 'referral'), { code, token: null });
  });
});
