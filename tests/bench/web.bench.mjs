// web.bench.mjs: what a page pays for Loopwise, with GrowthBook's script-tag bundle (npm
// @growthbook/growthbook, dist/bundles/auto.min.js: a feature-flag SDK with no UI and no model)
// measured beside it in the same run, the same way. Prints name=value lines:
//
//   initial_gzip_bytes=       gzip -9 sizes of the web/dist files a cold first load fetched (tag
//                             inserted, no calls: until started and the model answered; no prompt,
//                             nothing to send), summed; measured from the requests the page made
//   download_gzip_bytes=      every file a script-tag page can fetch (the first load's, the prompt
//                             chunk, the transport chunk), gzip -9, summed
//   download_bytes=           the same, raw
//   widget_js_gzip_bytes=     loopwise.js alone, gzip -9
//   requests_before_ready=    requests from inserting the tag to Loopwise.ready (the tag's own included)
//   ready_ms=                 inserting the tag -> Loopwise.ready resolved (config fetched, WASM
//                             compiled, state restored: able to decide), headless Chromium, a
//                             127.0.0.1 static server, a fresh browser context (cold cache) per
//                             load, median of 20 loads
//   track_ms=                 one Loopwise.track() call, wall time, median of 200 (after 20 warm-up)
//   track_main_thread_ms=     main-thread time of one track() call until its promise resolved:
//                             Chromium's TaskDuration (CDP Performance.getMetrics) around 200
//                             calls after 20 warm-up, per call, minus the same for an empty async
//                             call: a mean (see mainThread() for why not a median). The calls are
//                             made back to back (each awaits the one before), so they share
//                             IndexedDB transactions (web/src/store.js)
//   track_alone_main_thread_ms=  the same for calls made 20 ms apart: each in a transaction of its own
//   growthbook_initial_gzip_bytes=, growthbook_requests_before_ready=, growthbook_ready_ms=
//                             the same for GrowthBook's bundle (ready: its queue callback ran, with
//                             an inline payload, so no network), and growthbook_eval_main_thread_ms=
//                             for one gb.isOn() call, measured as track_main_thread_ms is
//
//   node tests/bench/web.bench.mjs      (npm run bench runs it after building)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { dist, launchBrowser, requireBuilt, root, startDemo } from '../web/helpers.mjs';

const distDir = process.env.LW_WEB_DIST || dist;
const files = ['loopwise.js', 'loopwise.wasm', 'referral.lwc', 'loopwise.lwm', 'loopwise-prompt.js', 'loopwise-net.js'];
const growthbook = join(root, 'node_modules/@growthbook/growthbook/dist/bundles/auto.min.js');
requireBuilt(...files.map((f) => join(distDir, f)), growthbook);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const gzOf = (file) => gzipSync(readFileSync(file), { level: 9 }).length;
const gz = Object.fromEntries(files.map((f) => [f, gzOf(join(distDir, f))]));
console.log(`download_gzip_bytes=${files.reduce((a, f) => a + gz[f], 0)}`);
console.log(`download_bytes=${files.reduce((a, f) => a + readFileSync(join(distDir, f)).length, 0)}`);
console.log(`widget_js_gzip_bytes=${gz['loopwise.js']}`);

const LOADS = 20, WARM = 20, CALLS = 200;
const browser = await launchBrowser();
const demo = await startDemo(distDir);
const blank = demo.url + 'bench.html';

// One cold load in a fresh context: insert the tag (loopwise, or growthbook), wait until ready.
// Resolves to { ms, before: requests until ready, all: paths fetched until settled, page, ctx }.
async function coldLoad(kind) {
  const ctx = await browser.newContext();
  await ctx.route(blank, (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>bench</title>' }));
  await ctx.route(demo.url + 'gb/auto.min.js', (r) => r.fulfill({ contentType: 'text/javascript', body: readFileSync(growthbook) }));
  const page = await ctx.newPage();
  await page.goto(blank);
  const paths = [];
  page.on('request', (q) => paths.push(new URL(q.url()).pathname));
  const model = kind === 'loopwise' && page.waitForResponse((r) => r.url().endsWith('/loopwise.lwm'));
  const ms = await page.evaluate(async (k) => {
    const t0 = performance.now();
    const s = document.createElement('script');
    if (k === 'loopwise') {
      s.src = '/dist/loopwise.js';
      const loaded = new Promise((ok, fail) => { s.onload = ok; s.onerror = fail; });
      document.head.append(s);
      await loaded;
      if (!(await window.Loopwise.ready)) throw new Error('Loopwise did not start');
    } else {
      window.growthbook_config = { payload: { features: { flag: { defaultValue: true } } }, noStreaming: true };
      const ready = new Promise((ok) => { window.growthbook_queue = [(gb) => { window.gb = gb; ok(); }]; });
      s.src = '/gb/auto.min.js';
      document.head.append(s);
      await ready;
    }
    return performance.now() - t0;
  }, kind);
  const before = paths.length;
  if (model) await model;
  return { ms, before, all: [...paths], page, ctx };
}

// Main-thread ms of one fn(k) call in the page (k: the loop index): Chromium's TaskDuration (all
// main-thread tasks) around an in-page loop of CALLS calls, after WARM, divided by CALLS, minus
// the same for an empty async function. A mean, not a median: reading the metric around every
// single call costs the main thread more than the call itself (about 1 ms, and noisy).
async function mainThread(page, ctx, fn, emptyFn = 'async () => null') {
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Performance.enable');
  const task = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value;
  const loop = async (src, n) => page.evaluate(async ([body, count]) => {
    const f = (0, eval)(body);
    for (let k = 0; k < count; k++) await f(k);
  }, [src, n]);
  const per = async (src) => {
    await loop(src, WARM);
    const t0 = await task();
    await loop(src, CALLS);
    return ((await task()) - t0) * 1000 / CALLS;
  };
  const empty = await per(emptyFn);
  const full = await per(fn);
  console.log(`# main thread: ${full.toFixed(3)} ms a call, ${empty.toFixed(3)} ms an empty one`);
  return Math.max(0, full - empty);
}

try {
  for (const kind of ['loopwise', 'growthbook']) {
    const times = [], before = [];
    let last;
    for (let i = 0; i < LOADS; i++) {
      const r = await coldLoad(kind);
      times.push(r.ms);
      before.push(r.before);
      if (i < LOADS - 1) await r.ctx.close();
      else last = r;
    }
    const p = kind === 'loopwise' ? '' : 'growthbook_';
    if (kind === 'loopwise') {
      const fetched = last.all.filter((x) => x.startsWith('/dist/')).map((x) => x.slice(6));
      console.log(`initial_gzip_bytes=${fetched.reduce((a, f) => a + (gz[f] || 0), 0)}`);
      console.log(`# first load fetched: ${fetched.join(' ')}`);
    } else {
      console.log(`growthbook_initial_gzip_bytes=${gzOf(growthbook)}`);
    }
    console.log(`${p}requests_before_ready=${median(before)}`);
    console.log(`${p}ready_ms=${median(times).toFixed(1)}`);
    if (kind === 'loopwise') {
      const wall = await last.page.evaluate(async ([w, n]) => {
        const out = [];
        for (let k = 0; k < w + n; k++) {
          const t0 = performance.now();
          await window.Loopwise.track(k % 2 ? 'invite_sent' : 'nps_answered');
          if (k >= w) out.push(performance.now() - t0);
        }
        return out.sort((a, b) => a - b)[out.length >> 1];
      }, [WARM, CALLS]);
      console.log(`track_ms=${wall.toFixed(3)}`);
      const mt = await mainThread(last.page, last.ctx, "(k) => window.Loopwise.track(k % 2 ? 'invite_sent' : 'nps_answered')");
      console.log(`track_main_thread_ms=${mt.toFixed(3)}`);
      // The same for a call made alone: 20 ms after the one before (its transaction committed by
      // then), so it shares no transaction; the empty call waits the same.
      const pause = 'new Promise((r) => setTimeout(r, 20))';
      const alone = await mainThread(last.page, last.ctx, `(k) => ${pause}.then(() => window.Loopwise.track(k % 2 ? 'invite_sent' : 'nps_answered'))`,
        `() => ${pause}`);
      console.log(`track_alone_main_thread_ms=${alone.toFixed(3)}`);
    } else {
      const mt = await mainThread(last.page, last.ctx, "async () => window.gb.isOn('flag')");
      console.log(`growthbook_eval_main_thread_ms=${mt.toFixed(3)}`);
    }
    await last.ctx.close();
  }
} finally {
  await browser.close();
  await demo.stop();
}
