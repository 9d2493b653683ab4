// channels.test.mjs: the prompt's share channels and the preview (issue 14), the shipped
// web/dist in Chromium against a real ingest server on loopback.
//
//   node --test tests/web/channels.test.mjs      (after: bash src/scripts/build.sh)
//
// Every channel is used by keyboard alone (Tab to it, Enter or Space), its link checked for the
// device's referral code and the share's token, and its record's channel read back from the
// server's SQLite file. The web channels' share sites are answered by a stub page (the browser
// never leaves loopback). Screenshots go to $LW_ARTIFACTS (default build/artifacts/channels).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import {
  daytimeZone, dist, freePort, ingestBin, launchBrowser, prompting, requireBuilt, root, shipped, sql, startDemo, startIngest,
  tempDir, waitFor,
} from './helpers.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';
import { order } from '../../web/src/channels.js';

const distDir = process.env.LW_WEB_DIST || dist;
requireBuilt(join(distDir, 'loopwise.js'), join(distDir, 'loopwise-prompt.js'), join(distDir, 'loopwise-preview.js'), ingestBin);
const artifacts = process.env.LW_ARTIFACTS || join(root, 'build/artifacts/channels');
// A prompt at every project, as often as asked (no caps, no "not now" draw): one device can
// then share through every channel in turn. The shipped config's channels are the default: all.
const often = prompting({
  caps: { max_prompts: 1000, window_days: 1, min_gap_hours: 0 }, milestones: [{ event: 'project_completed', after: 1, every: 1 }],
});
const LABELS = { native: 'Share', copy: 'Copy link', email: 'Email', linkedin: 'LinkedIn', x: 'X', whatsapp: 'WhatsApp' };
const SITES = ['www.linkedin.com', 'x.com', 'wa.me'];
const DIALOG = 'loopwise-prompt [role=dialog]';

let browser, demo, ingest, tmp;
const contexts = [];
before(async () => {
  mkdirSync(artifacts, { recursive: true });
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

// A fresh device (its own storage) on the demo page, served `config` compiled and `model` (bytes)
// in place of the shipped model (default: none, so the rules decide). The share sites answer
// with a stub page; every request the page makes is kept in page.urls.
async function device({ config = often, model = Buffer.alloc(0), init, query = '' } = {}) {
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  contexts.push(ctx);
  await ctx.route(demo.url + 'dist/loopwise.lwm', (r) => r.fulfill({ status: 200, body: model }));
  await ctx.route(demo.url + 'dist/referral.lwc', (r) => r.fulfill({ contentType: 'application/octet-stream', body: Buffer.from(compileConfig(JSON.stringify(config))) }));
  await ctx.route((u) => SITES.includes(u.hostname), (r) => r.fulfill({ contentType: 'text/html', body: '<title>share site</title>' }));
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: demo.url });
  if (init) await ctx.addInitScript(init);
  const page = await ctx.newPage();
  page.urls = [];
  page.errors = [];
  page.on('request', (r) => page.urls.push(r.url()));
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(`${demo.url}?endpoint=${encodeURIComponent(ingest.base)}${query}`);
  await page.waitForSelector('body[data-lw]');
  assert.equal(await page.getAttribute('body', 'data-lw'), 'ready');
  return { ctx, page };
}

const shadow = (page, fn, arg) => page.evaluate(([f, a]) => (0, eval)(f)(document.querySelector('loopwise-prompt').shadowRoot, a), [String(fn), arg]);
// The prompt's channel buttons and links, in order, as [text, tag, href].
const offered = (page) => shadow(page, (r) => [...r.querySelectorAll('[role=dialog] > button:not(.x), [role=dialog] > a')]
  .map((e) => [e.textContent, e.tagName, e.getAttribute('href')]).filter(([t]) => t !== 'Not now'));
const focused = (page) => page.evaluate(() => document.querySelector('loopwise-prompt')?.shadowRoot.activeElement?.textContent);
async function prompt(page) {
  const d = await page.evaluate(() => window.Loopwise.track('project_completed'));
  assert.equal(d && d.prompt, true, 'the milestone prompts: ' + JSON.stringify(d));
  await page.locator(DIALOG).waitFor();
  return d;
}
// Keyboard only: Tab until the channel labelled `label` has focus, then `key`.
async function use(page, label, key) {
  for (let i = 0; i < 12 && await focused(page) !== label; i++) await page.keyboard.press('Tab');
  assert.equal(await focused(page), label, `Tab reaches ${label}`);
  await page.keyboard.press(key);
}
// The share or copy record of decision id as the server stored it.
const record = (id) => waitFor(`the share record of ${id}`, () =>
  sql(ingest.db, `SELECT kind, channel, code, token FROM events WHERE decision = '${id}' AND kind IN ('share', 'copy')`)[0]);
// The link a channel's share URL carries.
function inner(channel, href) {
  const u = new URL(href), q = (k) => u.searchParams.get(k);
  return { email: () => q('body').split('\n\n').pop(), linkedin: () => q('url'), x: () => q('url'), whatsapp: () => q('text').split(' ').pop() }[channel]();
}
const linkOf = (code, token) => `${shipped.share.url.replace('{code}', code)}&lwt=${token}`;

describe('share channels', () => {
  for (const key of ['Enter', 'Space']) {
    test(`every_channel_works_by_keyboard_alone_with_${key.toLowerCase()}_and_its_record_carries_the_channel`, async () => {
      // A share sheet where the browser has one (stubbed: Chromium on Linux has none).
      const { ctx, page } = await device({ init: () => { navigator.share = async (data) => { window.lwShared = data; }; } });
      const code = await page.evaluate(() => window.Loopwise.referralCode());
      for (const channel of Object.keys(LABELS)) {
        const d = await prompt(page);
        const links = await offered(page);
        assert.deepEqual(links.map(([t]) => t), Object.values(LABELS), 'every channel, in the config order');
        assert.equal(await focused(page), 'Share', 'focus starts on the first channel');
        const site = SITES.find((s) => (links.find(([t]) => t === LABELS[channel])[2] || '').includes(s));
        const popup = site && ctx.waitForEvent('page');
        if (channel === 'linkedin' && key === 'Enter') await page.screenshot({ path: join(artifacts, 'channels.png') });
        await use(page, LABELS[channel], key);
        const r = await record(d.id);
        assert.deepEqual([r.kind, r.channel], [channel === 'copy' ? 'copy' : 'share', channel]);
        assert.equal(r.code, code);
        assert.match(r.token, /^[0-9a-f]{32}$/);
        // What went out carries the code and this share's token.
        let sent;
        if (channel === 'native') sent = await page.evaluate(() => window.lwShared.url);
        else if (channel === 'copy') sent = await page.evaluate(() => navigator.clipboard.readText());
        else sent = inner(channel, links.find(([t]) => t === LABELS[channel])[2]);
        assert.equal(sent, linkOf(code, r.token), `${channel} carries the code and the token`);
        if (popup) {
          const p = await popup;
          await p.waitForLoadState();
          assert.equal(inner(channel, p.url()), linkOf(code, r.token), `the ${site} page opened with the link`);
          await p.close();
        }
        if (channel === 'email') assert.match(links.find(([t]) => t === 'Email')[2], /^mailto:\?subject=Try%20Acme%20Projects&body=/);
        await page.locator(DIALOG).waitFor({ state: 'detached' });
      }
      assert.deepEqual(page.errors, []);
    });
  }

  test('copy_confirms_and_a_refused_clipboard_leaves_a_selected_field_to_copy_by_keyboard', async () => {
    const { page } = await device();
    let d = await prompt(page);
    // No share sheet here: the prompt does not offer one (it would only copy).
    assert.deepEqual((await offered(page)).map(([t]) => t), ['Copy link', 'Email', 'LinkedIn', 'X', 'WhatsApp']);
    await use(page, 'Copy link', 'Enter');
    const status = page.locator('loopwise-prompt [role=status]');
    await waitFor('the confirmation', async () => (await status.textContent()) === 'Link copied.');
    assert.ok(await status.isVisible(), 'the confirmation is visible');
    await page.screenshot({ path: join(artifacts, 'copied.png') });
    assert.equal((await record(d.id)).channel, 'copy');
    await page.locator(DIALOG).waitFor({ state: 'detached' });

    // The clipboard refuses from now on.
    await page.evaluate(() => { navigator.clipboard.writeText = () => Promise.reject(new Error('denied')); });
    d = await prompt(page);
    await use(page, 'Copy link', 'Space');
    const field = await waitFor('the fallback field focused', () => shadow(page, (r) => {
      const f = r.activeElement;
      return f && f.tagName === 'INPUT' && { readOnly: f.readOnly, value: f.value, selected: [f.selectionStart, f.selectionEnd], label: f.getAttribute('aria-label') };
    }));
    assert.equal(field.readOnly, true);
    assert.equal(field.label, 'Copy this link:');
    assert.deepEqual(field.selected, [0, field.value.length], 'the whole link is selected');
    await page.screenshot({ path: join(artifacts, 'copy-fallback.png') });
    assert.equal(sql(ingest.db, `SELECT count(*) AS n FROM events WHERE decision = '${d.id}' AND kind = 'copy'`)[0].n, 0,
      'nothing copied yet, nothing recorded');
    await page.keyboard.press('Control+C');
    const r = await record(d.id);
    assert.equal(r.channel, 'copy');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), field.value, 'Ctrl+C copied the link');
    assert.equal(field.value, linkOf(r.code, r.token));
    await waitFor('the confirmation', async () => (await status.textContent()) === 'Link copied.');
    await page.locator(DIALOG).waitFor({ state: 'detached' });
  });

  test('a_cancelled_share_sheet_logs_nothing_and_a_failing_one_falls_back_to_copy', async () => {
    // The first call is cancelled by the user (AbortError), the next fails (NotAllowedError).
    // Both counted, and every clipboard write.
    const { page } = await device({ init: () => {
      window.shares = 0;
      window.copies = 0;
      navigator.share = async () => { throw new DOMException('no', window.shares++ ? 'NotAllowedError' : 'AbortError'); };
      const write = navigator.clipboard.writeText.bind(navigator.clipboard);
      navigator.clipboard.writeText = (t) => { window.copies++; return write(t); };
    } });
    const d = await prompt(page);
    await use(page, 'Share', 'Enter');
    await waitFor('the share sheet called', () => page.evaluate(() => window.shares === 1));
    // The rejection is handled in a microtask after it: by the next task a copy would have started.
    assert.equal(await page.evaluate(() => new Promise((ok) => setTimeout(() => ok(window.copies), 0))), 0, 'a cancelled sheet copies nothing');
    assert.equal(await page.locator(DIALOG).count(), 1, 'a cancelled sheet leaves the prompt open');
    assert.equal(sql(ingest.db, `SELECT count(*) AS n FROM events WHERE decision = '${d.id}' AND kind IN ('share', 'copy')`)[0].n, 0);
    await page.keyboard.press('Enter'); // focus is still on Share
    const r = await record(d.id);
    assert.deepEqual([r.kind, r.channel], ['copy', 'copy'], 'the failed sheet copied instead');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), linkOf(r.code, r.token));
  });

  test('the_config_chooses_the_channels_and_their_order_and_the_models_ranking_comes_first', async () => {
    // (no holdout: a holdout install sees no learned order, engine.h lw_engine_channels)
    const config = { ...often, holdout: 0, channels: ['copy', 'x', 'email', 'whatsapp'], preview: { allow_url: true } };
    let { page } = await device({ config });
    await prompt(page);
    assert.deepEqual((await offered(page)).map(([t]) => t), ['Copy link', 'X', 'Email', 'WhatsApp'], 'the config order');
    // The shipped model (format 4) with one channel ranking: whatsapp, email,
    // native. The ranked channels the config offers come first; native is not offered.
    const model = rankedModel(readFileSync(join(distDir, 'loopwise.lwm')), [5, 2, 0]);
    ({ page } = await device({ config, model }));
    await waitFor('the model', () => page.evaluate(async () => (await window.Loopwise.status()).model === 'ready'));
    await page.evaluate(() => window.Loopwise.preview('month_free'));
    assert.deepEqual((await offered(page)).map(([t]) => t), ['WhatsApp', 'Email', 'Copy link', 'X'], 'the ranking, then the config order');
  });

  test('the_order_merges_the_ranking_into_the_offered_channels', () => {
    assert.deepEqual(order(['copy', 'email', 'x'], [], true), ['copy', 'email', 'x']);
    assert.deepEqual(order(['copy', 'email', 'x'], ['x', 'native', 'copy'], true), ['x', 'copy', 'email']);
    assert.deepEqual(order(['native', 'copy'], ['copy'], false), ['copy']);
    assert.deepEqual(order(['native'], [], false), ['copy'], 'a prompt is never left without a channel');
    assert.deepEqual(order(undefined, [], true), ['native', 'copy'], 'a config compiled before channels');
    assert.deepEqual(order(['email', 'copy'], undefined, false), ['email', 'copy'], 'no ranking');
  });
});

// A copy of the shipped model (format 4, stripped, ranking no channel, share labels) with one
// channel ranking (channel indexes in LW_CHANNELS order): its u8 n_rows 0 before the u8 label
// kind 0 and the metadata's u16 length 0 (models/FORMAT.md) becomes that row, with a new checksum.
function rankedModel(b, ranking) {
  assert.equal(b.readUInt16LE(4), 4, 'the shipped model is format 4');
  const meta = b.length - 6, rows = meta - 2;
  assert.deepEqual([b[rows], b[meta - 1], b.readUInt16LE(meta)], [0, 0, 0], 'the shipped model ranks no channel, has share labels and is stripped');
  const out = Buffer.concat([b.subarray(0, rows), Buffer.from([1, ranking.length, ...ranking]), b.subarray(rows + 1, b.length - 4), Buffer.alloc(4)]);
  out.writeUInt32LE(crc32(out.subarray(0, out.length - 4)), out.length - 4);
  return out;
}

// Everything the device holds in IndexedDB, as text.
const stored = (page) => page.evaluate(() => new Promise((ok, no) => {
  const r = indexedDB.open('loopwise');
  r.onerror = () => no(r.error);
  r.onsuccess = () => {
    const os = r.result.transaction('kv').objectStore('kv'), k = os.getAllKeys(), v = os.getAll();
    v.onsuccess = () => {
      r.result.close();
      ok(JSON.stringify(k.result.map((key, i) => [key, v.result[i] && v.result[i].s ? [...v.result[i].s] : v.result[i]])));
    };
  };
}));

describe('preview', () => {
  test('preview_shows_a_variant_and_logs_nothing_and_changes_no_state', async () => {
    // The shipped caps (2 a month, 24 h apart) and milestones: a preview that counted as a
    // prompt would hold the next one back.
    const config = prompting();
    const { page } = await device({ config });
    // Settled: the server asked for the model and the time of asking saved (model.js).
    await waitFor('the model request recorded', async () => (await stored(page)).includes(':m"'));
    const status = await page.evaluate(() => window.Loopwise.status()), before = await stored(page);
    const local = () => page.evaluate(() => JSON.stringify(Object.entries(localStorage).sort()));
    const localBefore = await local();
    assert.equal(page.urls.some((u) => u.endsWith('/loopwise-prompt.js')), false, 'no prompt chunk before a prompt');
    const from = page.urls.length;
    assert.equal(await page.evaluate(() => window.Loopwise.preview('month_free', { locale: 'en' })), true);
    const dialog = page.locator(DIALOG);
    await dialog.waitFor();
    assert.equal(await page.locator('loopwise-prompt h2').textContent(), shipped.variants[1].title);
    await page.screenshot({ path: join(artifacts, 'preview.png') });
    assert.ok(page.urls.slice(from).some((u) => u.endsWith('/loopwise-prompt.js')), 'the prompt chunk loads for the preview');
    await page.locator('loopwise-prompt').getByRole('button', { name: 'Copy link' }).click();
    await page.locator('loopwise-prompt').waitFor({ state: 'detached' });
    await page.evaluate(() => window.Loopwise.preview('credit_10'));
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await page.locator('loopwise-prompt').waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => window.Loopwise.preview('nope')), null, 'an unknown variant shows nothing');

    assert.equal(await page.evaluate(() => window.Loopwise.explain()), null, 'no decision');
    assert.equal(await stored(page), before, 'IndexedDB unchanged (state, caps, outbox)');
    assert.equal(await local(), localBefore, 'localStorage unchanged');
    assert.deepEqual(await page.evaluate(() => window.Loopwise.status()), status, 'nothing pending');
    assert.deepEqual(page.urls.slice(from).filter((u) => u.startsWith(ingest.base)), [], 'no request to the ingest server');
    // The caps are untouched: the milestone still prompts.
    let d;
    for (let i = 0; i < shipped.milestones[0].after; i++) d = await page.evaluate(() => window.Loopwise.track('project_completed'));
    assert.equal(d && d.code, 'shown', JSON.stringify(d));
  });

  test('a_preview_with_a_locale_and_a_theme_shows_that_locales_texts_and_labels_in_that_theme', async () => {
    // The browser is English: the French comes from the preview's locale alone.
    const fr = { variants: { month_free: { title: 'Un mois offert' } } };
    const { page } = await device({ config: { ...often, locales: { fr } } });
    assert.equal(await page.evaluate(() => navigator.language.split('-')[0]), 'en');
    const from = page.urls.length;
    assert.equal(await page.evaluate(() => window.Loopwise.preview('month_free', { locale: 'fr', theme: { accent: '#c00' } })), true);
    await page.locator(DIALOG).waitFor();
    assert.ok(page.urls.slice(from).some((u) => u.endsWith('/loopwise-labels-fr.js')), 'the French labels load for the preview');
    assert.equal(await page.locator('loopwise-prompt h2').textContent(), 'Un mois offert', "the locale's variant text");
    assert.deepEqual((await offered(page)).map(([t]) => t), ['Copier le lien', 'E-mail', 'LinkedIn', 'X', 'WhatsApp', 'Plus tard'], 'the channels in French');
    const look = await shadow(page, (r) => ({
      lang: r.querySelector('.b').lang,
      close: r.querySelector('.x').getAttribute('aria-label'),
      notNow: [...r.querySelectorAll('button')].pop().textContent,
      accent: getComputedStyle(r.querySelector('.p')).backgroundColor,
    }));
    assert.deepEqual(look, { lang: 'fr', close: 'Fermer', notNow: 'Plus tard', accent: 'rgb(204, 0, 0)' });
    await page.screenshot({ path: join(artifacts, 'preview-fr.png') });
    await page.keyboard.press('Escape');
    await page.locator('loopwise-prompt').waitFor({ state: 'detached' });
    // Without options the same page previews the config's own texts, English labels, built-in colours.
    await page.evaluate(() => window.Loopwise.preview('month_free'));
    await page.locator(DIALOG).waitFor();
    assert.equal(await page.locator('loopwise-prompt h2').textContent(), shipped.variants[1].title);
    assert.deepEqual((await offered(page)).map(([t]) => t), ['Copy link', 'Email', 'LinkedIn', 'X', 'WhatsApp']);
    assert.notEqual(await shadow(page, (r) => getComputedStyle(r.querySelector('.p')).backgroundColor), 'rgb(204, 0, 0)');
    assert.deepEqual(page.errors, []);
  });

  test('url_preview_is_refused_by_default_and_shown_where_the_config_allows_it', async () => {
    let { page } = await device({ query: '&loopwise-preview=month_free' });
    await page.evaluate(() => window.Loopwise.referralCode()); // started, and past the check
    assert.equal(await page.locator('loopwise-prompt').count(), 0, 'no preview by default');
    assert.deepEqual(page.urls.filter((u) => /loopwise-(prompt|preview)\.js$/.test(u)), [], 'no chunk loaded');

    ({ page } = await device({ config: { ...often, preview: { allow_url: true } }, query: '&loopwise-preview=month_free' }));
    await page.locator(DIALOG).waitFor();
    assert.equal(await page.locator('loopwise-prompt h2').textContent(), shipped.variants[1].title);
    await page.keyboard.press('Escape');
    await page.locator('loopwise-prompt').waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => window.Loopwise.explain()), null, 'no decision');
    assert.deepEqual(page.urls.filter((u) => u.startsWith(ingest.base) && !u.includes('/v1/model')), [], 'nothing sent');
  });

  test('debug_overlay_shows_explain_for_the_last_decision', async () => {
    const { page } = await device();
    assert.equal(await page.evaluate(() => window.Loopwise.debug(true)), true);
    const text = () => page.evaluate(() => document.querySelector('loopwise-debug')?.shadowRoot.textContent);
    assert.match(await text(), /^Loopwise explain\(\)\nnull$/);
    const d = await page.evaluate(() => window.Loopwise.track('project_completed'));
    await waitFor('the overlay updated', async () => (await text()).includes(d.id));
    assert.deepEqual(JSON.parse((await text()).split('\n').slice(1).join('\n')), await page.evaluate(() => window.Loopwise.explain()));
    await page.screenshot({ path: join(artifacts, 'debug.png') });
    assert.equal(await page.evaluate(() => window.Loopwise.debug(false)), false);
    assert.equal(await page.locator('loopwise-debug').count(), 0);
  });
});
