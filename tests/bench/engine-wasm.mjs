// engine-wasm.mjs: track+decide latency and memory of the WASM runtime, on event streams from
// the population simulator (loopwise-sim --events-out). Prints name=value lines:
//
//   decide_calls= decide_decisions=   how many track calls were timed, and how many decided
//   decide_p50_us= decide_p99_us=     per track call (record + decide when at a milestone), WASM in
//                                     Node, process.hrtime, one engine per simulated user
//   decide_only_p99_us=               p99 over the calls that made a decision
//   wasm_heap_bytes=                  heap allocated and in use after the busiest user's simulated
//                                     year (outbox drained every 500 calls, as the widget does)
//   wasm_memory_bytes=                that engine's linear memory size
//   decide_mean_us_chromium=          mean per track call inside headless Chromium on the shipped
//                                     web/dist bundle, timed in batches of 1,000 calls
//
//   node tests/bench/engine-wasm.mjs EVENTS.jsonl   (run by tests/bench/engine.sh, which makes the stream)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTestEngine } from '../wasm/test-engine.mjs';
import { dist, launchBrowser, requireBuilt, root, startDemo, testScript } from '../web/helpers.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node tests/bench/engine-wasm.mjs EVENTS.jsonl');
  process.exit(2);
}
// In Node the test module (the shipped one plus the heap and memory readings, see
// src/wasm/test_exports.c); in Chromium the shipped one.
const testWasm = join(root, 'build/wasm/src/wasm/loopwise-test.wasm');
requireBuilt(join(dist, 'loopwise.wasm'), join(dist, 'loopwise.js'), testWasm);
// Compiled once, instantiated per user: as in a page, where the one engine runs in code the
// browser has compiled once (and tiered up as it warms).
const wasm = await WebAssembly.compile(readFileSync(testWasm));
const config = compileConfig(readFileSync(join(root, 'models/referral.json'), 'utf8'));
const model = new Uint8Array(readFileSync(join(root, 'models/default.lwm')));

// Group the stream by user, each in time order.
const users = new Map();
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (!line) continue;
  const ev = JSON.parse(line);
  if (!users.has(ev.u)) users.set(ev.u, []);
  users.get(ev.u).push(ev);
}
for (const evs of users.values()) evs.sort((a, b) => a.t - b.t);

const seed = (u) => new Uint8Array(new Uint32Array([u, 0, 99, 0]).buffer);
const opts = (ev) => ({ value: ev.v, label: ev.l });

async function replay(u, evs, timings, decided) {
  const e = await loadTestEngine({ wasm, config, seed: seed(u) });
  e.setModel(model);
  let calls = 0;
  for (const ev of evs) {
    const t0 = process.hrtime.bigint();
    const d = e.track(ev.e, ev.t, 0, opts(ev));
    const ns = Number(process.hrtime.bigint() - t0);
    if (timings) timings.push(ns);
    if (d && decided) decided.push(ns);
    if (d && d.prompt) e.outcome(d.id, 'close', ev.t);
    if (++calls % 500 === 0) while (e.takeBatch('bench', ev.t, 60000));
  }
  return e;
}

const all = [], decided = [];
for (const [u, evs] of users) (await replay(u, evs, all, decided)).free();
const pct = (xs, p) => { const s = Float64Array.from(xs).sort(); return s[Math.min(s.length - 1, Math.floor(s.length * p))] / 1000; };
console.log(`decide_calls=${all.length}`);
console.log(`decide_decisions=${decided.length}`);
console.log(`decide_p50_us=${pct(all, 0.5).toFixed(3)}`);
console.log(`decide_p99_us=${pct(all, 0.99).toFixed(3)}`);
console.log(`decide_only_p99_us=${pct(decided, 0.99).toFixed(3)}`);

// Memory: the busiest user's year in one fresh engine.
const [busiest, busiestEvents] = [...users].sort((a, b) => b[1].length - a[1].length)[0];
const e = await replay(busiest, busiestEvents, null, null);
console.log(`wasm_heap_bytes=${e.heapBytes()}`);
console.log(`wasm_memory_bytes=${e.memoryBytes()}`);

// Chromium: the shipped bundle's engine (window.Loopwise.loadEngine from web/dist/loopwise.js),
// one engine per user made before timing, calls timed in batches of 1,000.
const stream = [];
for (const evs of users.values()) {
  stream.push(...evs);
  if (stream.length >= 50000) break;
}
const browser = await launchBrowser();
const demo = await startDemo(dist);
try {
  const page = await browser.newPage();
  await page.goto(demo.url);
  await page.addScriptTag({ content: await testScript() });
  const mean = await page.evaluate(async ({ stream, configBytes, modelBytes }) => {
    const config = Uint8Array.from(configBytes);
    const wasm = await WebAssembly.compile(await (await fetch('/dist/loopwise.wasm')).arrayBuffer());
    const engines = new Map();
    for (const ev of stream) {
      if (engines.has(ev.u)) continue;
      const e = await window.LoopwiseTest.loadEngine({ wasm, config, seed: new Uint8Array(16) });
      e.setModel(Uint8Array.from(modelBytes));
      engines.set(ev.u, e);
    }
    let total = 0;
    for (let i = 0; i < stream.length; i += 1000) {
      const batch = stream.slice(i, i + 1000);
      const t0 = performance.now();
      for (const ev of batch) {
        const e = engines.get(ev.u);
        const d = e.track(ev.e, ev.t, 0, { value: ev.v, label: ev.l });
        if (d && d.prompt) e.outcome(d.id, 'close', ev.t);
      }
      total += performance.now() - t0;
      for (const e of engines.values()) while (e.takeBatch('bench', 0, 60000));
    }
    return (total * 1000) / stream.length;
  }, { stream, configBytes: Array.from(config), modelBytes: Array.from(model) });
  console.log(`decide_mean_us_chromium=${mean.toFixed(3)}`);
} finally {
  await browser.close();
  await demo.stop();
}
