// web.bench.mjs: what a page pays for Loopwise. Prints name=value lines:
//
//   download_bytes=        sum of the files a page fetches from web/dist (loopwise.js, loopwise.wasm,
//                          referral.lwc; never a source map)
//   download_gzip_bytes=   the same files each compressed with gzip -9 (zlib level 9), summed
//   widget_js_gzip_bytes=  loopwise.js alone, gzip -9 (the loader, widget, transport and engine.js)
//   ready_ms=              inserting the script tag -> Loopwise.ready resolved (config fetched and
//                          parsed, WASM compiled, state restored: able to decide), in headless
//                          Chromium from a 127.0.0.1 static server, fresh browser context (cold
//                          cache) per load, median of 20 loads
//   track_ms=              one Loopwise.track() call (lock, state sync, decision, save), median
//                          of 200 calls in one page
//
//   node tests/bench/web.bench.mjs      (npm run bench runs it after building)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { dist, launchBrowser, requireBuilt, startDemo } from '../web/helpers.mjs';

const distDir = process.env.LW_WEB_DIST || dist;
const files = ['loopwise.js', 'loopwise.wasm', 'referral.lwc', 'loopwise.lwm'];
requireBuilt(...files.map((f) => join(distDir, f)));

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
let raw = 0, gz = 0, js = 0;
for (const f of files) {
  const b = readFileSync(join(distDir, f));
  const z = gzipSync(b, { level: 9 }).length;
  raw += b.length;
  gz += z;
  if (f === 'loopwise.js') js = z;
}
console.log(`download_bytes=${raw}`);
console.log(`download_gzip_bytes=${gz}`);
console.log(`widget_js_gzip_bytes=${js}`);

const LOADS = 20, TRACKS = 200;
const browser = await launchBrowser();
const demo = await startDemo(distDir);
try {
  const blank = demo.url + 'bench.html';
  const times = [];
  for (let i = 0; i < LOADS; i++) {
    const ctx = await browser.newContext();
    await ctx.route(blank, (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>bench</title>' }));
    const page = await ctx.newPage();
    await page.goto(blank);
    times.push(await page.evaluate(async () => {
      const t0 = performance.now();
      const s = document.createElement('script');
      s.src = '/dist/loopwise.js';
      s.dataset.config = '/dist/referral.lwc';
      const loaded = new Promise((ok, fail) => { s.onload = ok; s.onerror = fail; });
      document.head.append(s);
      await loaded;
      if (!(await window.Loopwise.ready)) throw new Error('Loopwise did not start');
      return performance.now() - t0;
    }));
    if (i === LOADS - 1) {
      const t = await page.evaluate(async (n) => {
        const out = [];
        for (let k = 0; k < n; k++) {
          const t0 = performance.now();
          await window.Loopwise.track(k % 2 ? 'invite_sent' : 'nps_answered');
          out.push(performance.now() - t0);
        }
        return out;
      }, TRACKS);
      console.log(`track_ms=${median(t).toFixed(3)}`);
    }
    await ctx.close();
  }
  console.log(`ready_ms=${median(times).toFixed(1)}`);
} finally {
  await browser.close();
  await demo.stop();
}
