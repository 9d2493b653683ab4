// consent.test.mjs: consent and the browser's privacy signals stop collection (issue 12, part 1),
// and the widget's status() and forget(). The shipped web/dist in Chromium against a real ingest
// server; every request the page makes is captured.
//
//   node --test tests/web/consent.test.mjs      (after: bash src/scripts/build.sh)
//
// "Nothing leaves" is checked without waiting for time: while collection is off the test does
// what would send (decisions, a referee landing and conversion, referrals(), the flush on
// 'online', the beacon on 'pagehide'), then gives consent and waits for a decision made after
// it to be stored. Every flush sends everything pending oldest first, so a record kept from
// before consent would be stored by then too; the requests captured before consent must not
// include one to the ingest server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  daytimeZone, dist, freePort, ingestBin, launchBrowser, prompting, requireBuilt, shipped, sql, startDemo, startIngest,
  tempDir, waitFor,
} from './helpers.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';

const distDir = process.env.LW_WEB_DIST || dist;
requireBuilt(join(distDir, 'loopwise.js'), join(distDir, 'loopwise.wasm'), ingestBin);
// Every project_completed is a decision point that prompts (prompting(): no "not now" draw); no
// holdout, caps or quiet hours in the way.
const cfg = (over = {}) => prompting({
  holdout: 0, quiet_hours: undefined, approval: undefined,
  milestones: [{ event: 'project_completed', after: 1, every: 1 }],
  caps: { max_prompts: 1000, window_days: 30, min_gap_hours: 0 }, ...over,
});
const KEY = 'loopwise:demo-site-key:';

let browser, demo, ingest, tmp;
before(async () => {
  tmp = tempDir();
  browser = await launchBrowser();
  demo = await startDemo(distDir);
  ingest = await startIngest(join(tmp.dir, 'consent.db'), await freePort());
});
after(async () => {
  await browser?.close();
  await demo?.stop();
  await ingest?.stop();
  tmp?.remove();
});

// A fresh device with config c, landing through a share link with `code`; `init` runs in every
// page before its scripts; with `unreachable` every request to the server fails until unrouted.
// d.requests: every request to the ingest server, as "METHOD path". In the page, every fetch and
// sendBeacon to it is also logged with the phase the page was in when it was called
// (window.lwCalls, window.lwPhase: set in the page, so a request made just before a phase
// change is never counted after it).
async function device(c, { code, init, unreachable, defaultModel } = {}) {
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  if (!defaultModel) await ctx.route(demo.url + 'dist/loopwise.lwm', (r) => r.fulfill({ status: 200, body: '' }));
  await ctx.route(demo.url + 'dist/t.lwc', (r) => r.fulfill({ contentType: 'application/octet-stream', body: Buffer.from(compileConfig(c)) }));
  if (init) await ctx.addInitScript(init);
  await ctx.addInitScript((base) => {
    window.lwPhase = 'before consent';
    window.lwCalls = [];
    const log = (url) => String(url).startsWith(base) && window.lwCalls.push({ phase: window.lwPhase, what: String(url).slice(base.length) });
    const f = window.fetch, b = navigator.sendBeacon.bind(navigator);
    window.fetch = (url, o) => { log(url); return f(url, o); };
    navigator.sendBeacon = (url, body) => { log(url); return b(url, body); };
  }, ingest.base);
  if (unreachable) await ctx.route(ingest.base + '/**', (r) => r.abort());
  const d = { ctx, requests: [], errors: [] };
  ctx.on('request', (r) => {
    if (r.url().startsWith(ingest.base)) d.requests.push({ what: r.method() + ' ' + new URL(r.url()).pathname });
  });
  d.page = await ctx.newPage();
  d.warnings = [];
  d.page.on('console', (m) => (m.type() === 'error' ? d.errors : m.type() === 'warning' ? d.warnings : []).push(m.text()));
  await d.page.goto(`${demo.url}?endpoint=${encodeURIComponent(ingest.base)}&config=/dist/t.lwc${code ? '&ref=' + code : ''}`);
  assert.equal(await d.page.evaluate(() => window.Loopwise.ready), true, 'started');
  return d;
}
const call = (page, name, ...args) => page.evaluate(([n, a]) => window.Loopwise[n](...a), [name, args]);
// The same, after setting the page's phase.
const callIn = (page, phase, name, ...args) => page.evaluate(([p, n, a]) => { window.lwPhase = p; return window.Loopwise[n](...a); }, [phase, name, args]);
const calls = (page, phase) => page.evaluate((p) => window.lwCalls.filter((c) => c.phase === p), phase);
// A decision with no prompt on screen (the host is busy): a decision record all the same.
const decide = async (page) => {
  await call(page, 'busy', true);
  return call(page, 'track', 'project_completed');
};
// What would send now: a flush ('online') and the beacons of a page hide.
const provoke = (page) => page.evaluate(() => { dispatchEvent(new Event('online')); dispatchEvent(new Event('pagehide')); });
// The widget's IndexedDB records: {key: value} with bytes as hex.
const idb = (page) => page.evaluate(() => new Promise((ok, no) => {
  const r = indexedDB.open('loopwise');
  r.onerror = () => no(r.error);
  r.onsuccess = () => {
    const os = r.result.transaction('kv').objectStore('kv'), k = os.getAllKeys(), v = os.getAll();
    v.onsuccess = () => {
      r.result.close();
      const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
      ok(Object.fromEntries(k.result.map((key, i) => {
        const x = v.result[i];
        return [key, x && x.s instanceof Uint8Array ? hex(x.s) : typeof x === 'string' ? x : JSON.stringify(x)];
      })));
    };
  };
}));
const pendingKeys = async (page) => Object.keys(await idb(page)).filter((k) => k.startsWith(KEY + 'o:'));
const rowsOf = (id) => sql(ingest.db, `SELECT kind, install FROM events WHERE decision = '${id}'`);
const codeRows = (code) => sql(ingest.db, `SELECT kind FROM events WHERE code = '${code}'`);
const newCode = () => 'C' + Math.random().toString(36).slice(2, 11).toUpperCase().replace(/[^A-Z0-9]/g, 'Q');

// Give consent, make a decision and wait until the ingest server has stored it; returns its
// install key. Then reload: the model is asked for now.
async function collectionStarts(d) {
  assert.equal(await callIn(d.page, 'after consent', 'consent', true), true);
  const after = await decide(d.page);
  const rows = await waitFor('the decision made after consent stored', () => { const r = rowsOf(after.id); return r.length ? r : null; });
  await d.page.reload();
  await waitFor('the model asked for after consent', () => d.requests.some((r) => r.what === 'GET /v1/model'));
  // The server has no model for the site (204): the answer is recorded, quietly.
  await waitFor('the model answer recorded', async () => (JSON.parse((await idb(d.page))[KEY + 'm'] || '{}').t || 0) > 0);
  assert.deepEqual(d.warnings.filter((w) => w.includes('Loopwise: model: HTTP')), [], 'a 204 for the model is no warning');
  return rows[0].install;
}

// Everything a device without consent would send, then consent given; nothing of before leaves.
async function nothingLeavesUntilConsent(d, code) {
  const before = [(await decide(d.page)).id, (await decide(d.page)).id];
  await call(d.page, 'conversion');
  await call(d.page, 'referrals');
  await provoke(d.page);
  const stored = await idb(d.page);
  const early = d.requests.length;
  const sent = await calls(d.page, 'before consent');
  const install = await collectionStarts(d);
  for (const id of before) assert.deepEqual(rowsOf(id), [], `decision ${id} made without consent is never sent`);
  assert.deepEqual(codeRows(code), [], 'no referee landing or conversion from before consent');
  assert.deepEqual(sent, [], 'no fetch or beacon to the ingest server before consent');
  assert.equal(early, 0, 'no request of any kind to the ingest server before consent');
  for (const [k, v] of Object.entries(stored)) assert.ok(!v.includes(install), `the install key is not in IndexedDB (${k}) before consent`);
  assert.deepEqual(d.errors.filter((e) => e.includes('Loopwise')), []);
  await d.ctx.close();
}

describe('consent and privacy signals stop collection', () => {
  test('with_consent_required_and_none_given_nothing_reaches_the_server_until_consent', async () => {
    const code = newCode();
    const d = await device(cfg({ consent: { required: true, default: true } }), { code });
    await nothingLeavesUntilConsent(d, code);
  });

  test('with_global_privacy_control_nothing_reaches_the_server_until_consent', async () => {
    const code = newCode();
    const d = await device(cfg(), {
      code, init: () => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true }),
    });
    await nothingLeavesUntilConsent(d, code);
  });

  test('after_consent_false_queued_records_are_deleted_and_nothing_reaches_the_server', async () => {
    const code = newCode();
    // The server unreachable: the landing and the first decisions wait in IndexedDB.
    const d = await device(cfg(), { code, unreachable: true });
    const queued = [(await decide(d.page)).id, (await decide(d.page)).id];
    await provoke(d.page);
    await waitFor('batches pending while the server is unreachable', async () => (await pendingKeys(d.page)).length > 0);
    assert.equal(await callIn(d.page, 'refused', 'consent', false), false);
    assert.deepEqual(await pendingKeys(d.page), [], 'pending batches deleted by the refusal');
    await d.ctx.unroute(ingest.base + '/**');
    const refused = [(await decide(d.page)).id];
    await call(d.page, 'conversion');
    await call(d.page, 'referrals');
    await provoke(d.page);
    const stored = await idb(d.page);
    const sent = await calls(d.page, 'refused');
    const install = await collectionStarts(d);
    for (const id of [...queued, ...refused]) assert.deepEqual(rowsOf(id), [], `decision ${id} is never sent`);
    assert.deepEqual(codeRows(code), [], 'no referee record from before the refusal or after it');
    assert.deepEqual(sent, [], 'no fetch or beacon after the refusal');
    for (const [k, v] of Object.entries(stored)) assert.ok(!v.includes(install), `the install key is not in IndexedDB (${k}) after the refusal`);
    await d.ctx.close();
  });
});

describe('referral counts', () => {
  test('referrals_are_asked_by_post_only_once_this_device_shared_and_the_install_key_is_in_no_url', async () => {
    const d = await device(cfg());
    await d.ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: demo.url });
    const none = await call(d.page, 'referrals');
    assert.equal(none.conversions, 0, 'before sharing: no conversions');
    await call(d.page, 'track', 'project_completed');
    await d.page.locator('loopwise-prompt').getByRole('button', { name: 'Copy link' }).click();
    const code = await call(d.page, 'referralCode');
    const rows = await waitFor('the copy stored', () => { const r = sql(ingest.db, `SELECT install FROM events WHERE kind = 'copy' AND code = '${code}'`); return r.length ? r : null; });
    const asked = d.requests.filter((r) => r.what.includes('/v1/referrals')).length;
    const posts = [];
    d.page.on('request', (r) => r.url().includes('/v1/referrals') && posts.push({ method: r.method(), url: r.url(), body: r.postData() }));
    const r = await call(d.page, 'referrals');
    assert.deepEqual({ code: r.code, conversions: r.conversions }, { code, conversions: 0 });
    assert.equal(asked, 0, 'not asked before this device shared');
    assert.equal(posts.length, 1);
    assert.equal(posts[0].method, 'POST');
    assert.deepEqual(JSON.parse(posts[0].body), { v: 1, write_key: 'demo-site-key', code, install: rows[0].install });
    const urls = [];
    d.ctx.on('request', (x) => urls.push(x.url()));
    await d.page.reload();
    await call(d.page, 'referrals');
    for (const u of [...urls, ...posts.map((p) => p.url)]) assert.ok(!u.includes(rows[0].install), 'no URL carries the install key: ' + u);
    await d.ctx.close();
  });
});

describe('status and forget', () => {
  test('status_reports_consent_pending_and_the_last_error', async () => {
    const d = await device(cfg({ consent: { required: true, default: false } }));
    let s = await call(d.page, 'status');
    assert.equal(s.started, true);
    assert.equal(s.consent, 'unset');
    await d.ctx.route(ingest.base + '/v1/outcomes', (r) => r.fulfill({ status: 503, headers: { 'access-control-allow-origin': '*' }, body: '{"error":"down"}' }));
    await call(d.page, 'consent', true);
    await decide(d.page);
    await provoke(d.page);
    s = await waitFor('a pending batch and the error in status()', async () => {
      const x = await call(d.page, 'status');
      return x.pending > 0 && x.error ? x : null;
    });
    assert.equal(s.consent, 'given');
    assert.match(s.error, /503/);
    assert.equal(s.dropped, 0);
    await call(d.page, 'consent', false);
    s = await call(d.page, 'status');
    assert.equal(s.consent, 'refused');
    assert.equal(s.pending, 0);
    await d.ctx.close();
  });

  test('status_says_whether_the_model_can_decide_for_these_variants', async () => {
    const none = await device(cfg());
    assert.equal((await call(none.page, 'status')).model, 'none', 'no model: the rules decide');
    await none.ctx.close();
    // The model arrives after `ready` (until then the rules decide): wait for it to be set.
    const loaded = (page) => waitFor('the default model set', async () => {
      const m = (await call(page, 'status')).model;
      return m !== 'none' && m;
    });
    const ready = await device(cfg(), { defaultModel: true });
    assert.equal(await loaded(ready.page), 'ready', 'the shipped model for the shipped variants');
    await ready.ctx.close();
    // Another program's variants: the shipped model has no data for them.
    const other = cfg({ variants: shipped.variants.map((v, i) => ({ ...v, id: 'other_' + i })) });
    const d = await device(other, { defaultModel: true });
    assert.equal(await loaded(d.page), 'no_data');
    await d.ctx.close();
  });

  test('forget_deletes_the_local_state_and_the_servers_records_of_this_install', async () => {
    const code = newCode();
    const d = await device(cfg(), { code });
    const id = (await decide(d.page)).id;
    const rows = await waitFor('the decision stored', () => { const r = rowsOf(id); return r.length ? r : null; });
    const install = rows[0].install;
    const count = () => sql(ingest.db, `SELECT COUNT(*) AS n FROM events WHERE install = '${install}'`)[0].n;
    assert.ok(Object.values(await idb(d.page)).some((v) => v.includes(install)), 'the install key is kept on the device');
    // A decision that cannot leave yet: it must never reach the server after forget.
    await d.ctx.route(ingest.base + '/v1/outcomes', (r) => r.abort());
    const unsent = (await decide(d.page)).id;
    assert.equal(await call(d.page, 'forget'), true);
    await waitFor('the server forgot the install', () => count() === 0);
    for (const [k, v] of Object.entries(await idb(d.page))) assert.ok(!v.includes(install), `the install key is gone from IndexedDB (${k})`);
    assert.equal(await d.page.evaluate(() => window.Loopwise.explain()), null, 'the local state is fresh');
    assert.deepEqual((await call(d.page, 'status')).consent, 'unset');
    // The device goes on with a new identity, and nothing of the old one is sent.
    await d.ctx.unroute(ingest.base + '/v1/outcomes');
    const next = (await decide(d.page)).id;
    await provoke(d.page);
    const again = await waitFor('a decision after forget stored', () => { const r = rowsOf(next); return r.length ? r : null; });
    assert.notEqual(again[0].install, install, 'a new install key after forget');
    assert.equal(count(), 0, 'no record of the forgotten install sent after forget');
    assert.deepEqual(rowsOf(unsent), [], 'the decision pending at forget is never sent');
    await d.ctx.close();
  });
});
