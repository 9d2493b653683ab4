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
    const engine = { restore: () => ({ ok: true }), snapshot: () => new Uint8Array(1), takeBatch: () => queue.shift() || null };
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
