// bundle.test.mjs: what web/dist ships: exactly the three files a page downloads, within the
// download budget, and a script that adds one global and nothing else.
//
//   node --test tests/web/bundle.test.mjs      (after: bash src/scripts/build.sh)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { dist, launchBrowser, requireBuilt, startDemo } from './helpers.mjs';

const distDir = process.env.LW_WEB_DIST || dist;
const FILES = ['loopwise.js', 'loopwise.lwm', 'loopwise.wasm', 'referral.lwc'];
requireBuilt(...FILES.map((f) => join(distDir, f)));
const gz = (f) => gzipSync(readFileSync(join(distDir, f)), { level: 9 }).length;

test('dist_holds_exactly_what_a_page_downloads', () => {
  assert.deepEqual(readdirSync(distDir).sort(), FILES);
  const js = readFileSync(join(distDir, 'loopwise.js'), 'utf8');
  assert.doesNotMatch(js, /sourceMappingURL/);
  assert.ok(js.split('\n').length <= 3, 'loopwise.js is minified');
});

// The engine issue's target is 20 KB gzip for the whole download; it is NOT met today (about
// 25-27 KB: the WASM engine alone is about 19 KB, see README "Measured figures"), and
// `npm run bench` reports the figure (download_gzip_bytes=). This test is the regression guard
// in the meantime: a change that grows the download past the ceiling fails here and must say why.
const CEILING = 28000;
test('whole_download_stays_under_its_regression_ceiling', () => {
  const sizes = Object.fromEntries(FILES.map((f) => [f, gz(f)]));
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  assert.ok(total <= CEILING, `download is ${total} B gzip -9 > ${CEILING}: ${JSON.stringify(sizes)}`);
});

// The widget script was 5,104 B gzip -9 before model loading (web/src/model.js), the referral
// ladder in the prompt and Loopwise.referrals()/referralCode() added about 650 B; the 5 KB
// target is not met. Trimmed to 5,722 B (from 5,747, and that while lowering `?.` for Chrome
// 75-79); the ceiling is that plus about 50 B of slack, so growth has to be a decision.
const WIDGET_CEILING = 5770;
test('widget_script_stays_under_its_regression_ceiling', () => {
  const n = gz('loopwise.js');
  assert.ok(n <= WIDGET_CEILING, `loopwise.js is ${n} B gzip -9 > ${WIDGET_CEILING}`);
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
  assert.match(added.d && added.d.reason, /project_completed|suppressed/, 'the queued track() calls were replayed');
  await page.close();
});
