// transport.test.mjs: web/src/transport.js and store.js in Chromium, driven step by step: an
// engine stand-in hands out batches the test chooses and the test answers every request, so
// nothing here depends on timing.
//
//   node --test tests/web/transport.test.mjs      (after: bash src/scripts/build.sh)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dist, launchBrowser, startDemo, testScript, waitFor } from './helpers.mjs';

let browser, demo;
before(async () => { browser = await launchBrowser(); demo = await startDemo(process.env.LW_WEB_DIST || dist); });
after(async () => { await browser?.close(); await demo?.stop(); });

// Batch ids are random, so their order says nothing about age. Three batches, each taken in a
// flush of its own, with ids that sort against their age (c, b, a): while the server is down
// they pile up, and once it is back they arrive oldest first.
test('pending_batches_are_sent_oldest_first_whatever_their_ids', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(demo.url + 'dist/');
  await page.addScriptTag({ content: await testScript() });
  const endpoint = 'http://127.0.0.1:9';
  const sent = [], stored = [];
  let up = false;
  await ctx.route(endpoint + '/v1/outcomes', (route) => {
    const body = route.request().postData();
    sent.push(body);
    if (!up) return route.abort();
    stored.push(body);
    return route.fulfill({ status: 200, headers: { 'access-control-allow-origin': '*' }, body: '{"stored":1}' });
  });
  await page.evaluate(async (endpoint) => {
    const T = window.LoopwiseTest, queue = [];
    // What store.js and transport.js call on an engine; takeBatch hands out `queue`.
    const engine = { restore: () => ({ ok: true }), snapshot: () => new Uint8Array(1), takeBatch: () => queue.shift() || null, collecting: () => 1 };
    const store = T.createStore(await T.openDb(), engine, 'loopwise:order:', () => {});
    const net = T.createTransport({ engine, store, endpoint, writeKey: 'order', warn: () => {} });
    // One batch into the engine, then a flush now (the 'online' handler flushes at once).
    window.step = (id) => { queue.push({ id, body: `{"batch_id":"${id}"}` }); dispatchEvent(new Event('online')); };
    net.soon(1e9); // a debounce that never fires: only the test's steps flush
  }, endpoint);
  const id = (c) => c.repeat(32);
  await page.evaluate((i) => window.step(i), id('c'));
  await waitFor('the first attempt', () => sent.length === 1);
  await page.evaluate((i) => window.step(i), id('b'));
  await waitFor('the second attempt', () => sent.length === 2);
  up = true;
  await page.evaluate((i) => window.step(i), id('a'));
  await waitFor('three batches stored', () => stored.length === 3);
  assert.deepEqual(stored.map((b) => JSON.parse(b).batch_id), [id('c'), id('b'), id('a')], 'oldest first');
  await ctx.close();
});

// ---- delivery that never stalls (issue 12, part 3) ---------------------------------------

// A page with the test entry and a transport over an engine stand-in whose takeBatch hands out
// window.queue; window.step() flushes at once ('online'). Resolves to the page.
async function transportPage(ctx, endpoint, { clock } = {}) {
  const page = await ctx.newPage();
  if (clock) await page.clock.install();
  page.warnings = [];
  page.errors = [];
  page.on('console', (m) => { if (m.type() === 'warning') page.warnings.push(m.text()); if (m.type() === 'error') page.errors.push(m.text()); });
  await page.goto(demo.url + 'dist/');
  await page.addScriptTag({ content: await testScript() });
  await page.evaluate(async (endpoint) => {
    const T = window.LoopwiseTest, queue = (window.queue = []);
    const engine = {
      restore: () => ({ ok: true }), snapshot: () => new Uint8Array(1), takeBatch: () => queue.shift() || null,
      collecting: () => true,
    };
    const store = T.createStore(await T.openDb(), engine, 'loopwise:t:', () => {});
    window.net = T.createTransport({ engine, store, endpoint, writeKey: 'demo-site-key', warn: (m) => console.warn(m) });
    window.step = (...batches) => { queue.push(...batches); dispatchEvent(new Event('online')); };
    window.net.soon(1e9);
  }, endpoint);
  return page;
}
// The widget's pending batch keys (store.js) in this page's IndexedDB.
const pendingIds = (page) => page.evaluate(() => new Promise((ok) => {
  const r = indexedDB.open('loopwise');
  r.onsuccess = () => {
    const g = r.result.transaction('kv').objectStore('kv').getAllKeys();
    g.onsuccess = () => { r.result.close(); ok(g.result.filter((k) => k.includes(':o:')).map((k) => k.slice(k.lastIndexOf(':') + 1))); };
  };
}));
const cors = { 'access-control-allow-origin': '*' };
const hex = (n, len) => n.toString(16).padStart(len, '0');

test('more_than_a_megabyte_leaves_one_page_without_reload', async () => {
  const { freePort, startIngest, tempDir, sql } = await import('./helpers.mjs');
  const tmp = tempDir();
  const ingest = await startIngest(tmp.dir + '/mb.db', await freePort());
  const ctx = await browser.newContext();
  try {
    const page = await transportPage(ctx, ingest.base);
    // 20 valid batches of about 53 KB each (1.07 MB), each a batch of its own (ids mb00..mb13).
    const now = Date.now(), batches = [];
    for (let b = 0; b < 20; b++) {
      const events = [];
      for (let i = 0; i < 200; i++) {
        events.push({ kind: 'decision', t: now, install: hex(b, 32), decision: hex(b * 1000 + i, 16), action: 'credit_10', p: 0.75, mode: 'rules', reason: 'shown: milestone project_completed×3 ' + 'x'.repeat(60) });
      }
      const id = 'mb' + hex(b, 2);
      batches.push({ id, body: JSON.stringify({ v: 1, batch_id: id, write_key: 'demo-site-key', sent_at: now, events }) });
    }
    const total = batches.reduce((n, b) => n + b.body.length, 0);
    assert.ok(total > 1 << 20, `${total} bytes`);
    // One batch at a time, each stored before the next is handed over: the point is what one
    // page delivers in all (the old transport stalled after ~64 KB), and handing all 20 over at
    // once would race the pending-storage cap (16 batches, oldest dropped) on a slow machine.
    const stored = () => sql(ingest.db, 'SELECT COUNT(*) AS n FROM batches')[0].n;
    for (const [i, b] of batches.entries()) {
      await page.evaluate((b) => window.step(b), b);
      await waitFor(`batch ${i + 1} of 20 stored`, () => stored() === i + 1, 60000);
    }
    await waitFor('nothing pending', async () => (await pendingIds(page)).length === 0);
  } finally {
    await ctx.close();
    await ingest.stop();
    tmp.remove();
  }
});

test('pending_storage_is_capped_oldest_dropped_and_counted', async () => {
  const ctx = await browser.newContext();
  const endpoint = 'http://127.0.0.1:9';
  let sent = 0;
  await ctx.route(endpoint + '/v1/outcomes', (r) => { sent++; return r.abort(); });
  const page = await transportPage(ctx, endpoint);
  // 60 batches of 50 KB each while the server is unreachable (3 MB).
  const ids = [];
  for (let b = 0; b < 60; b++) {
    const id = 'cap' + hex(b, 2);
    ids.push(id);
    await page.evaluate((b) => window.step(b), { id, body: `{"batch_id":"${id}","events":[{"kind":"decision"}],"pad":"${'x'.repeat(50000)}"}` });
    await waitFor('the attempt', () => sent > b);
  }
  const kept = await pendingIds(page);
  assert.ok(kept.length < ids.length, `pending storage capped: ${kept.length} of ${ids.length} kept`);
  assert.deepEqual(kept, ids.slice(ids.length - kept.length), 'the oldest are dropped, the newest kept');
  assert.equal(await page.evaluate(() => window.net.st.dropped), ids.length - kept.length, 'every dropped record counted (one a batch)');
  await ctx.close();
});

test('401_403_and_413_are_retried_and_dropped_only_after_7_days_while_400_drops_at_once', async () => {
  const ctx = await browser.newContext();
  const endpoint = 'http://127.0.0.1:9';
  const answers = [401, 403, 413, 200], seen = [];
  await ctx.route(endpoint + '/v1/outcomes', (r) => {
    const body = r.request().postData(), id = JSON.parse(body).batch_id;
    seen.push(id);
    const s = id === 'bad' ? 400 : id === 'old' ? 403 : answers.shift();
    return r.fulfill({ status: s, headers: cors, body: `{"error":"HTTP ${s}"}` });
  });
  const page = await transportPage(ctx, endpoint, { clock: true });
  await page.evaluate(() => window.step({ id: 'cfg', body: '{"batch_id":"cfg"}' }));
  for (let n = 1; n <= 4; n++) {
    await waitFor(`attempt ${n}`, () => seen.length === n);
    if (n < 4) await page.evaluate(() => window.step());
  }
  assert.deepEqual(seen, ['cfg', 'cfg', 'cfg', 'cfg'], 'the same batch until the server takes it');
  await waitFor('the stored batch removed', async () => (await pendingIds(page)).length === 0);
  assert.deepEqual(page.warnings.filter((w) => w.includes('dropped')), [], 'nothing dropped on 401, 403, 413');
  // 400: dropped with one warning, never sent again.
  await page.evaluate(() => window.step({ id: 'bad', body: '{"batch_id":"bad"}' }));
  await waitFor('the 400 batch dropped', async () => (await pendingIds(page)).length === 0 && seen.length === 5);
  assert.equal(page.warnings.filter((w) => w.includes('dropped') && w.includes('400')).length, 1);
  // A 403 for a batch taken more than 7 days ago: dropped.
  await page.evaluate(() => window.step({ id: 'old', body: '{"batch_id":"old"}' }));
  await waitFor('the old batch refused once', () => seen.length === 6);
  assert.deepEqual(await pendingIds(page), ['old'], 'a fresh batch waits after a 403');
  await page.clock.setSystemTime(Date.now() + 8 * 864e5);
  await page.evaluate(() => window.step());
  await waitFor('the 7-day-old batch dropped', async () => (await pendingIds(page)).length === 0);
  assert.equal(page.warnings.filter((w) => w.includes('dropped') && w.includes('403')).length, 1);
  await ctx.close();
});

test('indexeddb_that_never_answers_leaves_ready_false_after_5_s_with_one_console_error', async () => {
  const ctx = await browser.newContext();
  // open() answers nothing, ever.
  await ctx.addInitScript(() => { IDBFactory.prototype.open = function () { return {}; }; });
  await ctx.route(demo.url + 'dist/loopwise.lwm', (r) => r.fulfill({ status: 200, body: '' }));
  const page = await ctx.newPage();
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.clock.install();
  await page.goto(demo.url + '?endpoint=http://127.0.0.1:9');
  await waitFor('the script started', () => page.evaluate(() => !!(window.Loopwise && window.Loopwise.ready)));
  // The page's clock, not the test's: the script asked at once (its open() is called as it
  // starts), so 5 s pass in two steps.
  await page.evaluate(() => { window.Loopwise.ready.then((v) => { window.settled = v; }); });
  await page.clock.runFor(4000);
  assert.equal(await page.evaluate(() => window.settled), undefined, 'still waiting before 5 s');
  await page.clock.runFor(1100);
  assert.equal(await page.evaluate(() => window.settled), false, 'ready resolves false');
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0], /IndexedDB/);
  assert.equal(await page.evaluate(() => window.Loopwise.track('project_completed')), null, 'later calls resolve to null');
  assert.equal(await page.getAttribute('body', 'data-lw'), 'failed', 'the page carries on');
  await ctx.close();
});
