// store.test.mjs: back-to-back calls share one IndexedDB transaction (web/src/store.js), and what
// they did is stored: it survives a reload or a closed tab right after the last call resolved, and
// two tabs calling at once still count every event once.
//
//   node --test tests/web/store.test.mjs      (after: bash src/scripts/build.sh)
//
// A blank page with the script tag and no endpoint (nothing is sent); busy(true) holds every
// prompt, so a milestone is a decision and nothing else, and the default model answers with no
// bytes (the config's rules decide). Milestones come from models/referral.json.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { daytimeZone, dist, launchBrowser, requireBuilt, root, startDemo } from './helpers.mjs';

const distDir = process.env.LW_WEB_DIST || dist;
requireBuilt(join(distDir, 'loopwise.js'), join(distDir, 'loopwise.wasm'));
const cfg = JSON.parse(readFileSync(join(root, 'models/referral.json'), 'utf8'));
const m = cfg.milestones.find((x) => x.event === 'project_completed');
// How many decisions `n` project_completed events reach.
const decisions = (n) => (n < m.after ? 0 : Math.floor((n - m.after) / m.every) + 1);

let browser, demo;
before(async () => { browser = await launchBrowser(); demo = await startDemo(distDir); });
after(async () => { await browser?.close(); await demo?.stop(); });

// A device (browser context) whose pages count the IndexedDB transactions they open.
async function device() {
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  await ctx.route(demo.url + 'blank.html', (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>t</title>' }));
  await ctx.route(demo.url + 'dist/loopwise.lwm', (r) => r.fulfill({ status: 200, body: '' }));
  await ctx.addInitScript(() => {
    const open = IDBDatabase.prototype.transaction;
    window.__tx = 0;
    IDBDatabase.prototype.transaction = function (...a) { window.__tx++; return open.apply(this, a); };
  });
  const tab = async (page) => {
    page = page || await ctx.newPage();
    await page.goto(demo.url + 'blank.html');
    const ok = await page.evaluate(async () => {
      const s = document.createElement('script');
      s.src = '/dist/loopwise.js';
      document.head.append(s);
      await new Promise((r) => { s.onload = r; });
      window.Loopwise.busy(true);
      return window.Loopwise.ready;
    });
    assert.equal(ok, true, 'Loopwise started');
    return page;
  };
  return { ctx, tab };
}

// n project_completed calls, each awaiting the one before; resolves to {ids, tx}: the decisions'
// ids and the transactions the calls opened.
const track = (page, n) => page.evaluate(async (k) => {
  const ids = [], t0 = window.__tx;
  for (let i = 0; i < k; i++) {
    const d = await window.Loopwise.track('project_completed');
    if (d) ids.push(d.id);
  }
  return { ids, tx: window.__tx - t0 };
}, n);

test('back_to_back_calls_share_a_transaction_and_survive_a_reload', async () => {
  const { ctx, tab } = await device();
  const page = await tab();
  const n = m.after + m.every - 1; // one short of the second milestone
  const first = await track(page, n);
  assert.equal(first.ids.length, decisions(n));
  assert.ok(first.tx <= 2, `${n} back-to-back calls opened ${first.tx} transactions`);
  await page.reload(); // at once: the last transaction may still be committing
  await tab(page);
  const next = await track(page, 1);
  assert.equal(next.ids.length, 1, `the ${n + 1}th event after the reload is the second milestone: all ${n} were stored`);
  await ctx.close();
});

test('back_to_back_calls_survive_closing_the_tab', async () => {
  const { ctx, tab } = await device();
  const one = await tab();
  const n = m.after + m.every - 1;
  assert.equal((await track(one, n)).ids.length, decisions(n));
  await one.close();
  const two = await tab();
  assert.equal((await track(two, 1)).ids.length, 1, `all ${n} events before the tab closed were stored`);
  await ctx.close();
});

test('two_tabs_calling_back_to_back_at_once_count_every_event_once', async () => {
  const { ctx, tab } = await device();
  const one = await tab(), two = await tab();
  const N = 120;
  const [a, b] = await Promise.all([track(one, N), track(two, N)]);
  const ids = new Set([...a.ids, ...b.ids]);
  assert.equal(a.ids.length + b.ids.length, ids.size, 'no decision twice');
  assert.equal(ids.size, decisions(2 * N), `${2 * N} events in two tabs reach ${decisions(2 * N)} milestones`);
  // Each tab's calls shared transactions (at most 50 calls each), and the tabs took turns.
  assert.ok(a.tx + b.tx < N, `${2 * N} calls opened ${a.tx + b.tx} transactions`);
  await ctx.close();
});
