// e2e.test.mjs: the shipped web/dist in Chromium against a real ingest server.
//
//   node --test tests/web/            (after: bash src/scripts/build.sh)
//
// The demo page (web/demo, served with web/dist at /dist/) is clicked like a user would; what
// the widget sends is checked in the ingest server's SQLite file. Every browser context is a
// fresh device (its own storage), every page in a context a tab of the same device.
// Milestone counts and texts come from models/referral.json (compiled into the shipped
// referral.lwc), so the test follows the config.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  daytimeZone, dist, freePort, root, ingestBin, launchBrowser, prompting, requireBuilt, shipped, sleep, sql, startBackend, startDemo,
  startIngest, tempDir, waitFor,
} from './helpers.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';
import { loadEngine } from '../../web/src/engine.js';

const distDir = process.env.LW_WEB_DIST || dist;
requireBuilt(join(distDir, 'loopwise.js'), join(distDir, 'loopwise.wasm'), join(distDir, 'referral.lwc'), ingestBin);
// The devices below are served prompting() (helpers.mjs) in place of the shipped config: the
// rules then prompt at every milestone, so the widget's tests do not depend on a random draw.
const cfg = prompting();
// A config served to one device in place of the shipped one: compiled, as a site serves it.
const serveConfig = (ctx, name, c) => ctx.route(demo.url + 'dist/' + name,
  (r) => r.fulfill({ contentType: 'application/octet-stream', body: Buffer.from(compileConfig(c)) }));
const firstAt = (event) => cfg.milestones.find((m) => m.event === event).after;
const PROJECTS = firstAt('project_completed');
const FEATURES = firstAt('feature_discovered');
const DIALOG = 'loopwise-prompt [role=dialog]';

let browser, demo, ingest, tmp;
const contexts = [];

before(async () => {
  tmp = tempDir();
  browser = await launchBrowser();
  demo = await startDemo(distDir);
  ingest = await startIngest(join(tmp.dir, 'ingest.db'), await freePort());
});

after(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  await browser?.close();
  await demo?.stop();
  await ingest?.stop();
  tmp?.remove();
});

// A fresh device in daytime (quiet hours never interfere); console errors/warnings collected.
// Unless `model` is set, the default model next to the script answers with no bytes, which the
// engine refuses (one console.warn): the config's rules decide, so every milestone prompts and
// the tests of the widget itself do not depend on the model's exploration.
async function device({ endpoint = ingest.base, query = '', init, model = false } = {}) {
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  contexts.push(ctx);
  if (!model) await ctx.route(demo.url + 'dist/loopwise.lwm', (r) => r.fulfill({ status: 200, body: '' }));
  await serveConfig(ctx, 'referral.lwc', cfg);
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: demo.url });
  if (init) await ctx.addInitScript(init);
  const tab = async () => {
    const page = await ctx.newPage();
    page.errors = [];
    page.warnings = [];
    page.on('console', (m) => {
      if (m.type() === 'error') page.errors.push(m.text());
      if (m.type() === 'warning') page.warnings.push(m.text());
    });
    page.on('pageerror', (e) => page.errors.push('pageerror: ' + e.message));
    await page.goto(`${demo.url}?endpoint=${encodeURIComponent(endpoint)}${query}`);
    return page;
  };
  return { ctx, tab };
}

async function ready(page) {
  await page.waitForSelector('body[data-lw]');
  assert.equal(await page.getAttribute('body', 'data-lw'), 'ready', 'Loopwise started: ' + JSON.stringify(page.errors));
}
async function click(page, label, times = 1) {
  for (let i = 0; i < times; i++) await page.getByRole('button', { name: label, exact: true }).click();
}
const explain = (page) => page.evaluate(() => window.Loopwise.explain());
// Reach the first milestone in `page` and wait for the prompt; resolves to the shown decision.
async function prompted(page) {
  await click(page, 'Complete a project', PROJECTS);
  await page.locator(DIALOG).waitFor();
  return explain(page);
}
// How many batches wait in the widget's IndexedDB for the server (records "<prefix>o:<batch_id>").
const pending = (page) => page.evaluate(() => new Promise((ok, no) => {
  const r = indexedDB.open('loopwise');
  r.onerror = () => no(r.error);
  r.onsuccess = () => {
    const g = r.result.transaction('kv').objectStore('kv').getAllKeys();
    g.onsuccess = () => { r.result.close(); ok(g.result.filter((k) => k.includes(':o:')).length); };
  };
}));
// track() is asynchronous: wait until explain() shows a decision other than `prev`.
const nextDecision = (page, prev) => waitFor('a new decision', async () => {
  const d = await explain(page);
  return d && d.id !== prev ? d : null;
});
// Stored events of one decision, as "kind" strings in time order.
const kindsOf = (db, id) => sql(db, `SELECT kind FROM events WHERE decision = '${id}' ORDER BY t, id`).map((r) => r.kind);
async function stored(db, id, kinds) {
  const want = [...kinds].sort().join(',');
  let got;
  try {
    await waitFor('', () => (got = kindsOf(db, id).sort().join(',')) === want);
  } catch {
    assert.fail(`decision ${id}: stored events [${got}], expected [${want}] (${db})`);
  }
}

describe('widget against the ingest server', () => {
  test('prompt_appears_at_the_milestone_and_copy_reaches_sqlite', async () => {
    const { tab } = await device();
    const page = await tab();
    await ready(page);
    await click(page, 'Complete a project', PROJECTS - 1);
    assert.equal(await page.locator(DIALOG).count(), 0, 'no prompt before the milestone');
    await click(page, 'Complete a project');
    const dialog = page.locator(DIALOG);
    await dialog.waitFor();

    const d = await explain(page);
    assert.equal(d.prompt, true);
    const v = cfg.variants[d.variant];
    assert.equal(await dialog.getAttribute('aria-modal'), 'true');
    assert.equal(await page.locator('loopwise-prompt h2').textContent(), v.title);
    const text = await dialog.textContent();
    for (const s of [v.message, v.referrer_reward, v.referee_reward]) assert.ok(text.includes(s), `prompt shows "${s}"`);
    const labelled = await page.evaluate(() => {
      const r = document.querySelector('loopwise-prompt').shadowRoot;
      return r.getElementById(r.querySelector('[role=dialog]').getAttribute('aria-labelledby')).textContent;
    });
    assert.equal(labelled, v.title, 'aria-labelledby names the title');
    // No share sheet in Chromium on Linux: the first channel offered is copy (channels.js).
    assert.equal(await page.evaluate(() => document.querySelector('loopwise-prompt').shadowRoot.activeElement?.textContent), 'Copy link',
      'focus moved into the dialog');

    // demo.css paints every button yellow with a square black border; none of it gets in.
    const look = await page.locator('loopwise-prompt').getByRole('button', { name: 'Not now' })
      .evaluate((b) => { const c = getComputedStyle(b); return [c.backgroundColor, c.borderRadius]; });
    assert.deepEqual(look, ['rgb(255, 255, 255)', '8px'], 'host CSS does not leak into the prompt');

    await page.locator('loopwise-prompt').getByRole('button', { name: 'Copy link' }).click();
    await dialog.waitFor({ state: 'detached' });
    const link = await page.evaluate(() => navigator.clipboard.readText());
    // The shipped share.url has {code} and no {token}: the per-share token follows as lwt=.
    assert.match(link, new RegExp('^' + cfg.share.url.split('{code}')[0].replace(/[.?*+^$()[\]\\/]/g, '\\$&') + '([A-Z0-9]{6,16})&lwt=([0-9a-f]{32})$'));

    await stored(ingest.db, d.id, ['decision', 'impression', 'copy']);
    const copy = sql(ingest.db, `SELECT action, code, token, channel FROM events WHERE decision = '${d.id}' AND kind = 'copy'`)[0];
    if (copy.code) assert.ok(link.includes('=' + copy.code + '&'), 'the stored code is the one in the copied link');
    assert.ok(link.endsWith('&lwt=' + copy.token), `the stored token ${copy.token} is the one in the copied link ${link}`);
    assert.equal(copy.channel, 'copy');
    assert.deepEqual(page.errors.filter((e) => !e.startsWith('Failed to load resource')), []);
  });

  test('second_tab_shares_the_device_state_and_shows_no_second_prompt', async () => {
    // navigator.share exists here (stubbed), so Share uses it rather than the copy fallback.
    const { tab } = await device({ init: () => { navigator.share = async () => { window.__shared = true; }; } });
    const one = await tab();
    await ready(one);
    const shown = await prompted(one);

    const two = await tab();
    await ready(two);
    await click(two, 'Discover a feature', FEATURES);
    const d = await nextDecision(two, shown.id);
    assert.equal(d.prompt, false, `second tab suppressed (${d.reason})`);
    assert.equal(d.code, 'open_prompt', d.reason);
    assert.equal(await two.locator('loopwise-prompt').count(), 0, 'no prompt in the second tab');
    assert.equal(await one.locator(DIALOG).count(), 1, 'the first tab still shows its prompt');

    await one.locator('loopwise-prompt').getByRole('button', { name: 'Share' }).click();
    await one.locator(DIALOG).waitFor({ state: 'detached' });
    assert.equal(await one.evaluate(() => window.__shared), true);
    await stored(ingest.db, shown.id, ['decision', 'impression', 'share']);
    await stored(ingest.db, d.id, ['decision']);
    // One device: both tabs' records carry the same install key.
    const installs = sql(ingest.db, `SELECT DISTINCT install FROM events WHERE decision IN ('${shown.id}', '${d.id}')`);
    assert.equal(installs.length, 1);
  });

  test('concurrent_tabs_count_every_event_once', async () => {
    // Two tabs of one device track at the same time; every decision point must be reached
    // exactly once, which fails if one tab's write can be lost or read stale by the other.
    const { tab } = await device();
    const one = await tab(), two = await tab();
    await Promise.all([ready(one), ready(two)]);
    const N = 150, ids = new Set();
    const burst = (page) => page.evaluate(async (n) => {
      const out = [];
      for (let i = 0; i < n; i++) {
        const d = await window.Loopwise.track('project_completed');
        if (d) out.push(d.id);
      }
      return out;
    }, N);
    for (const list of await Promise.all([burst(one), burst(two)])) list.forEach((x) => ids.add(x));
    const m = cfg.milestones.find((x) => x.event === 'project_completed');
    const expected = Math.floor((2 * N - m.after) / m.every) + 1;
    assert.equal(ids.size, expected, `${2 * N} events in two tabs reach ${expected} milestones`);
  });

  test('withdrawing_consent_in_one_tab_closes_the_prompt_in_another', async () => {
    const { tab } = await device();
    const one = await tab();
    await ready(one);
    const shown = await prompted(one);
    const two = await tab();
    await ready(two);
    await two.getByLabel('Allow referral prompts').uncheck();
    await one.locator('loopwise-prompt').waitFor({ state: 'detached' });
    await click(two, 'Discover a feature', FEATURES);
    const d = await nextDecision(two, shown.id);
    assert.equal(d.code, 'consent', d.reason);
  });

  test('escape_dismisses_keeps_focus_in_the_dialog_and_restores_it', async () => {
    const { tab } = await device();
    const page = await tab();
    await ready(page);
    const id = (await prompted(page)).id;
    const inside = () => page.evaluate(() => document.querySelector('loopwise-prompt').shadowRoot.activeElement?.textContent);
    const seen = new Set();
    for (let i = 0; i < 9; i++) { await page.keyboard.press('Tab'); seen.add(await inside()); }
    assert.ok(!seen.has(undefined), 'Tab never leaves the dialog');
    assert.deepEqual([...seen].sort(), ['Copy link', 'Email', 'LinkedIn', 'Not now', 'WhatsApp', 'X', '\u00d7'].sort(), 'every button and link is reachable');
    await page.locator('loopwise-prompt h2').click(); // focus leaves the buttons; Escape still works
    await page.keyboard.press('Escape');
    await page.locator('loopwise-prompt').waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Complete a project', 'focus restored');
    await stored(ingest.db, id, ['decision', 'impression', 'dismiss']);
  });

  test('not_now_button_dismisses', async () => {
    const { tab } = await device();
    const page = await tab();
    await ready(page);
    const id = (await prompted(page)).id;
    await page.locator('loopwise-prompt').getByRole('button', { name: 'Not now' }).click();
    await page.locator('loopwise-prompt').waitFor({ state: 'detached' });
    await stored(ingest.db, id, ['decision', 'impression', 'dismiss']);
  });

  test('without_the_clipboard_the_link_is_shown_to_copy_and_leaving_it_uncopied_is_a_dismissal', async () => {
    // No Web Share (Chromium on Linux has none: no Share is offered) and a clipboard that refuses.
    const { tab } = await device({ init: () => { navigator.clipboard.writeText = () => Promise.reject(new Error('denied')); } });
    const page = await tab();
    await ready(page);
    const id = (await prompted(page)).id;
    assert.equal(await page.evaluate(() => 'share' in navigator), false);
    assert.equal(await page.locator('loopwise-prompt').getByRole('button', { name: 'Share' }).count(), 0);
    await page.locator('loopwise-prompt').getByRole('button', { name: 'Copy link' }).click();
    const field = page.locator('loopwise-prompt [role=status] input');
    await field.waitFor();
    assert.match(await field.inputValue(), /^https?:\/\/\S+[A-Z0-9]{6,16}&lwt=[0-9a-f]{32}$/);
    await sleep(1700);
    assert.equal(await page.locator(DIALOG).count(), 1, 'the dialog waits while the user copies by hand');
    await page.keyboard.press('Escape');
    await page.locator('loopwise-prompt').waitFor({ state: 'detached' });
    // Not copied (channels.test.mjs copies with Ctrl+C): Escape dismisses.
    await stored(ingest.db, id, ['decision', 'impression', 'dismiss']);
  });

  test('closing_the_tab_with_the_prompt_open_ends_the_prompt_for_the_other_tabs', async () => {
    const { tab } = await device();
    const page = await tab();
    await ready(page);
    const shown = await prompted(page);
    await stored(ingest.db, shown.id, ['decision', 'impression']);
    await page.close({ runBeforeUnload: true });

    // 'close' is not a wire record; it ends the open prompt in the shared state, so the next
    // milestone is held back by the gap, no longer by an open prompt.
    const next = await tab();
    await ready(next);
    await click(next, 'Discover a feature', FEATURES);
    const d = await nextDecision(next, shown.id);
    assert.equal(d.prompt, false);
    assert.notEqual(d.code, 'open_prompt', d.reason);
    await stored(ingest.db, d.id, ['decision']);
  });

  test('pending_batches_leave_by_beacon_when_the_page_goes_away', async () => {
    // fetch to the ingest server fails in this page (sendBeacon is left alone), so the batch
    // stays pending until the page hides and beacons it.
    const { tab } = await device({
      init: () => {
        const f = window.fetch;
        window.fetch = (u, o) => (String(u).includes('/v1/outcomes') ? Promise.reject(new TypeError('offline')) : f(u, o));
      },
    });
    const page = await tab();
    await ready(page);
    const id = (await prompted(page)).id;
    await page.locator('loopwise-prompt').getByRole('button', { name: 'Not now' }).click();
    await waitFor('the dismiss batch pending', async () => (await pending(page)) >= 2);
    assert.deepEqual(kindsOf(ingest.db, id), [], 'nothing sent by fetch');
    await page.close({ runBeforeUnload: true });
    await stored(ingest.db, id, ['decision', 'impression', 'dismiss']);
  });

  test('every_event_is_stored_once', async () => {
    const dup = sql(ingest.db, `SELECT decision, kind, COUNT(*) AS n FROM events WHERE decision IS NOT NULL GROUP BY decision, kind HAVING n > 1`);
    assert.deepEqual(dup, []);
    // Batches may still be arriving from closed tabs' beacons: compare once both have settled.
    let last;
    await waitFor('/v1/stats to agree with the file', async () => {
      const stats = await (await fetch(ingest.base + '/v1/stats')).json();
      last = [stats.outcomes, sql(ingest.db, 'SELECT COUNT(*) AS n FROM events')[0].n];
      return last[0] === last[1];
    }).catch(() => assert.fail(`/v1/stats outcomes ${last[0]}, the file holds ${last[1]}`));
  });
});

describe('host API', () => {
  test('approval_waits_for_the_host_then_shows_the_prompt', async () => {
    // The demo config plus an approval rule for enterprise accounts, served next to the real one.
    const approvalCfg = { ...cfg, attributes: { plan: ['free', 'enterprise'] }, approval: { attribute: 'plan', values: ['enterprise'] } };
    const { ctx, tab } = await device({ query: '&config=/dist/approval.lwc' });
    await serveConfig(ctx, 'approval.lwc', approvalCfg);
    const page = await tab();
    await ready(page);
    await page.evaluate(() => {
      window.__approvals = [];
      window.Loopwise.on('approval', (d) => window.__approvals.push(d.id));
      return window.Loopwise.attribute('plan', 'enterprise');
    });
    await click(page, 'Complete a project', PROJECTS);
    const waiting = await nextDecision(page, null);
    assert.equal(waiting.code, 'approval', waiting.reason);
    assert.equal(await page.locator('loopwise-prompt').count(), 0, 'no prompt before approval');
    // explain() shows the decision as soon as the engine made it; the event follows once its
    // transaction has completed.
    await waitFor("the host's 'approval' event", () => page.evaluate(() => window.__approvals.length));
    assert.deepEqual(await page.evaluate(() => window.__approvals), [waiting.id], "the host got an 'approval' event");

    const d = await page.evaluate((id) => window.Loopwise.approve(id), waiting.id);
    assert.equal(d.prompt, true, d.reason);
    await page.locator(DIALOG).waitFor();
    await page.keyboard.press('Escape');
    await stored(ingest.db, d.id, ['decision', 'impression', 'dismiss']);
  });

  test('a_referee_landing_from_the_share_link_and_its_conversion_reach_sqlite', async () => {
    const code = 'REF' + Math.random().toString(36).slice(2, 9).toUpperCase().replace(/[^A-Z0-9]/g, 'X');
    const param = /[?&]([^=&]+)=\{code\}/.exec(cfg.share.url)[1];
    const { tab } = await device({ query: `&${param}=${code}` });
    const page = await tab();
    await ready(page);
    await page.evaluate(() => window.Loopwise.conversion());
    const kinds = () => sql(ingest.db, `SELECT kind FROM events WHERE code = '${code}' ORDER BY t, id`).map((r) => r.kind).join(',');
    await waitFor(`landing and conversion with code ${code}`, () => kinds() === 'landing,conversion');
  });
});

describe('model serving and referral attribution', () => {
  // A second ingest server that also serves models from a directory, as a promoting trainer
  // fills it (<dir>/<site>/current.lwm, replaced by rename), and takes referee reports from the
  // demo's stand-in host backend (web/demo/backend.mjs) with the site's secret key.
  let server, models, backend;
  const KEY = 'loopwise:demo-site-key:'; // the widget's IndexedDB prefix for the demo's write key
  const SECRET = 'e2e-secret-' + Math.random().toString(36).slice(2).padEnd(12, '0');
  before(async () => {
    models = join(tmp.dir, 'models');
    mkdirSync(join(models, 'default'), { recursive: true });
    const config = join(tmp.dir, 'loop.json');
    writeFileSync(config, JSON.stringify({ sites: [{ id: 'default', write_key: 'demo-site-key',
      origins: ['http://127.0.0.1:*', 'http://localhost:*'], secret_keys: [SECRET] }] }));
    server = await startIngest(join(tmp.dir, 'loop.db'), await freePort(), ['--models-dir', models, '--config', config]);
    backend = await startBackend(server.base, SECRET);
  });
  after(async () => { await server?.stop(); await backend?.stop(); });
  const promote = (bytes) => {
    writeFileSync(join(models, 'default', '.tmp'), bytes);
    renameSync(join(models, 'default', '.tmp'), join(models, 'default', 'current.lwm'));
  };
  // The widget's stored model record {b, e, t} (bytes, ETag, fetched at), read in the page.
  const stored = (page) => page.evaluate((key) => new Promise((ok, no) => {
    const r = indexedDB.open('loopwise');
    r.onerror = () => no(r.error);
    r.onsuccess = () => {
      const g = r.result.transaction('kv').objectStore('kv').get(key);
      g.onsuccess = () => { r.result.close(); ok(g.result ? { e: g.result.e, t: g.result.t, n: g.result.b?.length } : null); };
    };
  }), KEY + 'm');
  const age = (page) => page.evaluate((key) => new Promise((ok) => {
    const r = indexedDB.open('loopwise');
    r.onsuccess = () => {
      const os = r.result.transaction('kv', 'readwrite').objectStore('kv');
      os.get(key).onsuccess = (e) => { os.put({ ...e.target.result, t: 0 }, key).onsuccess = () => { r.result.close(); ok(); }; };
    };
  }), KEY + 'm');
  // Every completed project is a decision point with no gap or holdout, so each track() decides
  // by the model whenever one is set; a prompt it shows is closed (no cooldown) for the next.
  const modelCfg = { ...cfg, holdout: 0, milestones: [{ event: 'project_completed', after: 1, every: 1 }], caps: { max_prompts: 1000, window_days: 30, min_gap_hours: 0 } };
  async function modelDevice() {
    const d = await device({ endpoint: server.base, model: true, query: '&config=/dist/model.lwc' });
    await serveConfig(d.ctx, 'model.lwc', modelCfg);
    return d;
  }
  async function decide(page) {
    const d = await page.evaluate(() => window.Loopwise.track('project_completed'));
    if (d.prompt) await page.locator('loopwise-prompt').getByRole('button', { name: 'Close' }).click();
    return d;
  }

  test('the_default_model_next_to_the_script_decides_until_the_server_has_one', async () => {
    const { tab } = await modelDevice();
    const page = await tab();
    await ready(page);
    await waitFor('the fetch for a served model recorded', async () => (await stored(page))?.t > 0);
    assert.equal((await stored(page)).e, undefined, 'the server has no model yet (204)');
    const d = await decide(page);
    assert.equal(d.mode, 'model', d.reason);
    assert.equal(d.model, 'm' + readFileSync(join(distDir, 'loopwise.lwm')).readUInt32LE(16), 'the shipped default model');
  });

  test('a_served_model_is_picked_up_and_a_corrupt_one_leaves_the_last_good_in_force', async () => {
    // tests/cases/models/cases.lwm: model id 42, enough data for models/referral.json's actions.
    const good = readFileSync(join(root, 'tests/cases/models/cases.lwm'));
    promote(good);
    const etag = (await fetch(`${server.base}/v1/model?key=demo-site-key`)).headers.get('etag');
    const { tab } = await modelDevice();
    const page = await tab();
    const answers = [];
    page.on('response', (r) => r.url().includes('/v1/model') && r.request().method() === 'GET' && answers.push(r.status()));
    await ready(page);
    await waitFor('the served model stored as the last good one', async () => (await stored(page))?.e === etag);
    let d = await decide(page);
    assert.deepEqual([d.mode, d.model], ['model', 'm42'], d.reason);
    const explained = await explain(page);
    assert.equal(JSON.stringify(explained).includes('"mode":"model"') && explained.model, 'm42');

    // refresh_hours later (aged here) the same file answers 304: only the time is recorded.
    await age(page);
    await page.reload();
    await ready(page);
    await waitFor('the 304 recorded', async () => (await stored(page))?.t > 0);
    assert.equal((await stored(page)).e, etag);
    assert.deepEqual(answers, [200, 304]);
    assert.deepEqual(page.warnings.filter((w) => /Loopwise/.test(w)), []);

    // A damaged file is put in place (a truncated copy: a new ETag, and no valid checksum).
    // After refresh_hours (aged here) the widget fetches it, the engine refuses it, and m42
    // stays in force, also across the reload.
    promote(good.subarray(0, good.length - 100));
    await age(page);
    await page.reload();
    await ready(page);
    await waitFor('the damaged model fetched', async () => (await stored(page))?.t > 0);
    await waitFor('one warning about it', () => page.warnings.some((w) => /Loopwise/.test(w)));
    assert.equal((await stored(page)).e, etag, 'the last good model is kept');
    d = await decide(page);
    assert.deepEqual([d.mode, d.model], ['model', 'm42'], d.reason);
    assert.equal(page.warnings.filter((w) => /Loopwise/.test(w)).length, 1, JSON.stringify(page.warnings));
    const logged = await waitFor('the decision stored', () => sql(server.db, `SELECT model, mode FROM events WHERE decision = '${d.id}' AND kind = 'decision'`)[0]);
    assert.deepEqual(logged, { model: 'm42', mode: 'model' });
  });

  test('a_referee_conversion_is_attributed_to_the_referrer_and_climbs_its_ladder', async () => {
    const ladder = [{ referrals: 0, reward: 'a $10 credit per friend' }, { referrals: 1, reward: 'a $20 credit per friend' },
      { referrals: 3, reward: 'a free year' }];
    const ladderCfg = { ...cfg, holdout: 0, ladder, caps: { max_prompts: 10, window_days: 30, min_gap_hours: 0 } };
    const onDevice = async (opts) => {
      const d = await device({ endpoint: server.base, query: '&config=/dist/ladder.lwc' + (opts?.query || '') });
      await serveConfig(d.ctx, 'ladder.lwc', ladderCfg);
      return d;
    };
    // The referrer's device: a prompt at the milestone shows both sides' rewards and the ladder.
    const referrer = await onDevice();
    const asked = []; // the referrals requests this device made
    referrer.ctx.on('request', (q) => { if (q.url().includes('/v1/referrals')) asked.push(q.url()); });
    const page = await referrer.tab();
    await ready(page);
    await click(page, 'Complete a project', PROJECTS);
    const dialog = page.locator(DIALOG);
    await dialog.waitFor();
    const v = cfg.variants[(await explain(page)).variant];
    const text = await dialog.textContent();
    for (const s of [v.referrer_reward, v.referee_reward, 'Your reward: ' + ladder[0].reward, 'Refer 1 more: ' + ladder[1].reward]) {
      assert.ok(text.includes(s), `prompt shows "${s}": ${text}`);
    }
    // Showing the prompt refreshed the cached count for the next one (zero so far: nothing shared).
    await waitFor('the cached count refreshed', () => page.evaluate((k) => localStorage.getItem(k) === '0', KEY + 'r'));
    // Nothing shared from this device yet: no referees, so the server is not asked (it would
    // answer 403 or zeros: a failed request on every first prompt); referrals() says 0.
    assert.deepEqual(await page.evaluate(() => window.Loopwise.referrals()), { code: await page.evaluate(() => window.Loopwise.referralCode()),
      conversions: 0, tier: 0, reward: ladder[0].reward, next: ladder[1] });
    assert.deepEqual(asked, [], 'no referrals request before this device shared');
    await page.locator('loopwise-prompt').getByRole('button', { name: 'Copy link' }).click();
    const link = await page.evaluate(() => navigator.clipboard.readText());
    const code = link.match(/([A-Z0-9]{6,16})&lwt=/)[1];
    assert.equal(await page.evaluate(() => window.Loopwise.referralCode()), code);
    await waitFor('the copy stored with the code', () => sql(server.db, `SELECT 1 FROM events WHERE kind = 'copy' AND code = '${code}'`).length);
    let r = await page.evaluate(() => window.Loopwise.referrals());
    assert.deepEqual(r, { code, conversions: 0, tier: 0, reward: ladder[0].reward, next: ladder[1] });
    assert.equal(asked.length, 1, 'asked once it had shared');


    // Another device opens the share link. A conversion the browser reports is a learning
    // signal only: anyone holding the public write key could send it, so it never counts.
    const param = /[?&]([^=&]+)=\{code\}/.exec(cfg.share.url)[1];
    const referee = await onDevice({ query: `&${param}=${code}&backend=${encodeURIComponent(backend.url)}` });
    const other = await referee.tab();
    await ready(other);
    await other.evaluate(() => window.Loopwise.conversion());
    const kinds = () => sql(server.db, `SELECT DISTINCT kind FROM events WHERE code = '${code}' ORDER BY kind`).map((x) => x.kind).join();
    await waitFor('the landing and the conversion stored', () => kinds() === 'conversion,copy,landing');
    assert.deepEqual(await page.evaluate(() => window.Loopwise.referrals()), r, 'a browser conversion does not climb the ladder');
    // The friend signs up: the host's backend reports it with the secret key (twice: a retry
    // counts once).
    for (let i = 0; i < 2; i++) {
      await other.evaluate(() => { delete document.body.dataset.signup; });
      await other.getByRole('button', { name: /Sign up/ }).click();
      await waitFor('the host backend answered', () => other.evaluate(() => document.body.dataset.signup));
      assert.equal(await other.evaluate(() => document.body.dataset.signup), 'counted');
    }
    assert.equal(sql(server.db, `SELECT count(*) AS n FROM referees WHERE code = '${code}'`)[0].n, 1);
    assert.notEqual(await other.evaluate(() => window.Loopwise.referralCode()), code, 'the referee has its own code');
    const foreign = await other.evaluate(([base, c]) => fetch(`${base}/v1/referrals/${c}?key=demo-site-key&install=${'0'.repeat(32)}`)
      .then((x) => x.status), [server.base, code]);
    assert.equal(foreign, 403, "another device cannot read the referrer's counts");

    r = await page.evaluate(() => window.Loopwise.referrals());
    assert.deepEqual(r, { code, conversions: 1, tier: 1, reward: ladder[1].reward, next: ladder[2] });
    // The host's backend pays from the attribution list (loopback: no read token configured).
    const list = await (await fetch(`${server.base}/v1/attributions`)).json();
    assert.deepEqual(list.attributions.filter((a) => a.code === code).map((a) => a.conversions), [1]);

    // The referrer's next prompt shows its new step, from the cached answer.
    const every = cfg.milestones.find((m) => m.event === 'project_completed').every;
    await click(page, 'Complete a project', every);
    await dialog.waitFor();
    const next = await dialog.textContent();
    for (const s of ['Your reward: ' + ladder[1].reward, 'Refer 2 more: ' + ladder[2].reward]) assert.ok(next.includes(s), `prompt shows "${s}": ${next}`);
    await page.keyboard.press('Escape');

    // Offline, the last answer is kept.
    await referrer.ctx.route(server.base + '/v1/referrals**', (route) => route.abort()); // POST /v1/referrals
    assert.deepEqual(await page.evaluate(() => window.Loopwise.referrals()), r);
  });
});

describe('stored state', () => {
  test('a_snapshot_an_earlier_widget_stored_as_base64_is_still_read', async () => {
    // The state an earlier build would have stored for this device: consent refused.
    const old = await loadEngine({ wasm: readFileSync(join(distDir, 'loopwise.wasm')), config: compileConfig(cfg), seed: new Uint8Array(16).fill(7) });
    old.consent(false, Date.now());
    const s = Buffer.from(old.snapshot()).toString('base64');
    const { tab } = await device();
    const page = await tab();
    await ready(page);
    await page.evaluate((snap) => new Promise((ok, no) => {
      const r = indexedDB.open('loopwise');
      r.onsuccess = () => {
        const t = r.result.transaction('kv', 'readwrite');
        t.objectStore('kv').put({ g: '1:old', s: snap }, 'loopwise:demo-site-key:s');
        t.oncomplete = () => { r.result.close(); ok(); };
        t.onerror = () => no(t.error);
      };
    }), s);
    await page.reload();
    await ready(page);
    // track() answers once its transaction has run: read the decision from the last call's
    // answer, not from explain() right after the clicks (their tracks may still be queued).
    await click(page, 'Complete a project', PROJECTS - 1);
    const d = await page.evaluate(() => window.Loopwise.track('project_completed'));
    assert.equal(d && d.reason, 'suppressed: no consent', 'the stored "no" holds');
    assert.deepEqual(page.warnings.filter((w) => /not restored/.test(w)), []);
  });
});

describe('demo config editor', () => {
  // loopwise-config.wasm in the page: a bad edit gets the JSON path and problem; a good one is
  // compiled, loaded by the tag after a reload, and decides (a prompt at the first project).
  test('a_bad_edit_names_its_path_and_a_good_one_is_used_by_the_tag', async () => {
    const { tab } = await device();
    const page = await tab();
    await ready(page);
    await page.waitForFunction(() => document.getElementById('config-json').value.includes('"milestones"'));
    const source = JSON.parse(await page.inputValue('#config-json'));
    assert.deepEqual(source, shipped, 'the editor starts from models/referral.json');
    await page.fill('#config-json', JSON.stringify({ ...cfg, milestones: [{ event: 'project_completed', after: -3 }] }));
    await page.click('#config-check');
    assert.equal(await page.textContent('#config-result'), 'milestones[0].after: expected a positive integer, got -3');
    assert.equal(await page.locator('#config-download').isVisible(), false, 'nothing to download for a bad config');
    await page.fill('#config-json', JSON.stringify({ ...cfg, milestones: [{ event: 'project_completed', after: 1 }] }, null, 2));
    await page.click('#config-check');
    const okText = await page.textContent('#config-result');
    assert.match(okText, /^OK: compiled to \d+ bytes\.$/);
    // The download is the compiled file itself: its size, and the magic a runtime checks first.
    const head = await page.evaluate(async () => {
      const b = new Uint8Array(await (await fetch(document.getElementById('config-download').href)).arrayBuffer());
      return { n: b.length, magic: String.fromCharCode(...b.subarray(0, 4)) };
    });
    assert.deepEqual(head, { n: Number(okText.match(/\d+/)[0]), magic: 'LWCF' });
    await Promise.all([page.waitForEvent('load'), page.click('#config-use')]);
    await ready(page);
    assert.equal(await page.textContent('#config-result'), 'This page uses the edited config.');
    await click(page, 'Complete a project', 1);
    await page.locator(DIALOG).waitFor();
    // (The ingest server has no model to serve: its 404 is the only resource error.)
    assert.deepEqual(page.errors.filter((e) => !e.startsWith('Failed to load resource')), []);
  });
});

describe('failures stay inside the widget', () => {
  test('missing_config_leaves_the_page_working_with_one_console_error', async () => {
    const { tab } = await device({ query: '&config=/dist/missing.lwc' });
    const page = await tab();
    await page.waitForSelector('body[data-lw=failed]');
    await click(page, 'Complete a project', PROJECTS + 1);
    assert.equal(await page.locator('#counts').textContent(), `project_completed: ${PROJECTS + 1}`, 'the host page still works');
    assert.equal(await page.evaluate(() => window.Loopwise.track('project_completed')), null, 'later calls are no-ops');
    assert.equal(await page.locator('loopwise-prompt').count(), 0);
    // Chromium itself logs the 404 as "Failed to load resource"; the widget adds exactly one.
    const ours = page.errors.filter((e) => !e.startsWith('Failed to load resource'));
    assert.equal(ours.length, 1, JSON.stringify(page.errors));
    assert.match(ours[0], /missing\.lwc/);
  });

  // §0: a runtime that meets a newer format than it knows refuses it with one console error and
  // the page keeps working. The files are the shipped ones with their format version raised.
  const newer = (file) => {
    const b = readFileSync(join(distDir, file));
    b.writeUInt16LE(b.readUInt16LE(4) + 1, 4); // models/FORMAT.md: u16 format version at byte 4
    return b;
  };
  test('a_newer_compiled_config_is_refused_with_one_console_error_and_the_page_works', async () => {
    const { ctx, tab } = await device();
    await ctx.route(demo.url + 'dist/referral.lwc', (r) => r.fulfill({ contentType: 'application/octet-stream', body: newer('referral.lwc') }));
    const page = await tab();
    await page.waitForSelector('body[data-lw=failed]');
    await click(page, 'Complete a project', PROJECTS + 1);
    assert.equal(await page.locator('#counts').textContent(), `project_completed: ${PROJECTS + 1}`, 'the host page still works');
    assert.equal(await page.evaluate(() => window.Loopwise.track('project_completed')), null, 'later calls are no-ops');
    assert.equal(page.errors.length, 1, JSON.stringify(page.errors));
    assert.match(page.errors[0], /version is unknown to this runtime/);
  });

  // The version is read before the checksum (src/core/model.c), so a newer model is refused as
  // newer, not as damage, and the widget reports that refusal (LW_ERR_VERSION) as an error.
  test('a_newer_model_is_refused_with_one_console_error_and_the_rules_decide', async () => {
    const { ctx, tab } = await device({ model: true });
    await ctx.route(demo.url + 'dist/loopwise.lwm', (r) => r.fulfill({ contentType: 'application/octet-stream', body: newer('loopwise.lwm') }));
    const page = await tab();
    await ready(page);
    const d = await prompted(page);
    // The shipped config holds out 10% of installs (random keys), who get the rules as well.
    assert.ok(d.mode === 'rules' || d.mode === 'holdout', `without a model the config's rules decide: ${d.mode}`);
    const ours = page.errors.filter((e) => !e.startsWith('Failed to load resource'));
    assert.equal(ours.length, 1, 'errors: ' + JSON.stringify(page.errors) + ' warnings: ' + JSON.stringify(page.warnings));
    assert.match(ours[0], /version/);
  });

  test('corrupt_wasm_leaves_the_page_working_with_exactly_one_console_error', async () => {
    // The URL answers 200 but is not WebAssembly: no network error, so no browser log either.
    const { tab } = await device({ query: '&wasm=/dist/referral.lwc' });
    const page = await tab();
    await page.waitForSelector('body[data-lw=failed]');
    await click(page, 'Discover a feature', FEATURES);
    await click(page, 'Complete a project', PROJECTS);
    assert.equal(await page.evaluate(() => window.Loopwise.explain()), null);
    assert.equal(await page.locator('loopwise-prompt').count(), 0);
    await sleep(300);
    assert.equal(page.errors.length, 1, JSON.stringify(page.errors));
  });
});

describe('transport', () => {
  test('a_stopped_server_gets_the_batch_once_after_restart_and_reload', async () => {
    const port = await freePort();
    const db = join(tmp.dir, 'restart.db');
    let server = await startIngest(db, port);
    const { tab } = await device({ endpoint: server.base });
    const page = await tab();
    await ready(page);
    await server.stop();

    // Outcomes while the server is down: the fetches fail and back off.
    const shown = (await prompted(page)).id;
    await page.locator('loopwise-prompt').getByRole('button', { name: 'Not now' }).click();
    await waitFor('a pending batch in IndexedDB', () => pending(page));
    await sleep(1500);

    // Back up: the backoff timer delivers it.
    server = await startIngest(db, port);
    await stored(db, shown, ['decision', 'impression', 'dismiss']);

    // Down again, a decision, a reload while down (the batch survives in IndexedDB), and up.
    await server.stop();
    await click(page, 'Discover a feature', FEATURES);
    const suppressed = (await nextDecision(page, shown)).id;
    await waitFor('the second batch pending', () => pending(page));
    await page.reload();
    await ready(page);
    server = await startIngest(db, port);
    await page.reload(); // the load-time flush
    await stored(db, suppressed, ['decision']);
    await waitFor('no batch pending', async () => (await pending(page)) === 0);

    assert.deepEqual(sql(db, 'SELECT decision, kind, COUNT(*) AS n FROM events GROUP BY decision, kind HAVING n > 1'), []);
    await server.stop();
  });

  test('429_waits_for_retry_after_and_other_4xx_drop_the_batch_with_one_warning', async () => {
    const { ctx, tab } = await device({ endpoint: 'http://127.0.0.1:9' });
    const seen = [];
    await ctx.route('http://127.0.0.1:9/v1/outcomes', (route) => {
      seen.push({ at: Date.now(), body: route.request().postData() });
      const cors = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'retry-after' };
      if (seen.length === 1) return route.fulfill({ status: 429, headers: { ...cors, 'retry-after': '2' }, body: '{"error":"slow down"}' });
      return route.fulfill({ status: 400, headers: cors, contentType: 'application/json', body: '{"error":"bad batch","field":"events[0].p"}' });
    });
    const page = await tab();
    await ready(page);
    await click(page, 'Complete a project', PROJECTS);
    await page.locator(DIALOG).waitFor();
    await page.keyboard.press('Escape');
    await waitFor('the retried batch', () => seen.length >= 2, 10000);
    assert.ok(seen[1].at - seen[0].at >= 1900, `retry after ${seen[1].at - seen[0].at} ms honours Retry-After: 2`);
    assert.equal(seen[1].body, seen[0].body, 'a retry sends the same body (same batch_id)');
    await waitFor('no batch pending', async () => (await pending(page)) === 0);
    await sleep(1500);
    const refused = seen.slice(1).map((r) => r.body);
    assert.equal(new Set(refused).size, refused.length, 'a batch refused with 400 is never sent again');
    const warns = page.warnings.filter((w) => w.includes('dropped'));
    assert.equal(warns.length, refused.length, 'one warning per dropped batch: ' + JSON.stringify(page.warnings));
    assert.match(warns[0], /400/);
  });
});
