// split.test.mjs: the shipped module in two (src/wasm/split.mjs): loopwise.wasm runs a first load
// on its own, the calls loopwise-later.wasm holds throw until it is loaded and then give exactly
// what the whole module gives (loopwise-test.wasm is not split).
//
//   node --test tests/wasm/split.test.mjs      (after: bash src/scripts/build.sh)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadEngine } from '../../web/src/engine.js';
import { root } from '../cases/run-cases.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';

const wasmPath = join(root, process.env.LW_WASM || 'web/dist/loopwise.wasm');
const wasm = readFileSync(wasmPath);
const later = readFileSync(join(dirname(wasmPath), 'loopwise-later.wasm'));
const whole = readFileSync(join(root, process.env.LW_TEST_WASM || 'build/wasm/src/wasm/loopwise-test.wasm'));
const config = compileConfig(readFileSync(join(root, 'models/referral.json'), 'utf8'));
const model = new Uint8Array(readFileSync(join(root, 'models/default.lwm')));
const T0 = 1767614400000, HOUR = 3600000;
const seed = new Uint8Array(16).fill(3), identity = new Uint8Array(26).fill(5);
const rnd = new Uint8Array(16).fill(9);

// A first load: state restored, model loaded, events tracked up to a prompt, the approval hold
// asked for, the records counted, the state saved. Returns everything the engine answered.
function firstLoad(e, snap) {
  const out = [e.restore(snap, T0), e.modelStatus()];
  e.setModel(model);
  e.attribute('plan', 'pro');
  e.flags(false, false, false);
  let d = null;
  for (let i = 0; i < 3; i++) out.push(d = e.track('project_completed', T0 + i * 60000, 0));
  out.push(e.approval(2, '', '', T0), e.approval(3, '', '', T0), e.info(1), e.collecting());
  out.push([...e.snapshot()]);
  return { out, d };
}

// What a shown prompt, a referee, an approval and the transport then do (the second module's calls).
function later_(e, d) {
  const t = T0 + HOUR;
  const out = [e.takeBatch('k', t), e.channels(t, 0)];
  e.outcome(d.id, 'impression', t);
  out.push(e.share(d.id, 'copy', rnd, t + 1000));
  e.outcome(d.id, 'close', t + 2000);
  e.landing('ABCDEF23', t + 3000, '');
  e.conversion(t + 4000);
  e.attribute('seats', '50-plus');
  e.consent(true, t + 5000); // an approval request goes only with consent given
  // The milestone's next step (every 5) for an account the approval rule holds.
  let held = null;
  for (let k = 1; k <= 5; k++) held = e.track('project_completed', t + k * 86400000, 0);
  out.push(held, e.approval(3, '', '', t + 5 * 86400000 + 1000));
  if (held && held.code === 'approval') out.push(e.approval(0, held.id, 'a'.repeat(32), t + 5 * 86400000 + 1000));
  out.push(e.takeBatch('k', t + 5 * 86400000 + 2000), [...e.snapshot()]);
  return out;
}

const open = (m, more) => loadEngine({ wasm: m, later: more && (() => more), config, seed, identity });

test('the_first_module_alone_runs_a_first_load_as_the_whole_module_does', async () => {
  const a = await open(wasm, later), b = await open(whole);
  assert.equal(a.full, false, 'the second module is not loaded');
  const fa = firstLoad(a, null), fb = firstLoad(b, null);
  assert.deepEqual(fa.out, fb.out);
  assert.ok(fa.d && fa.d.prompt, 'the third project_completed prompts');
  // A returning device: the same from the saved state.
  const snap = Uint8Array.from(fa.out.at(-1));
  const a2 = await open(wasm, later), b2 = await open(whole);
  assert.deepEqual(firstLoad(a2, snap).out, firstLoad(b2, snap).out);
  assert.equal(a2.full, false);
});

test('the_second_modules_calls_throw_until_it_is_loaded_and_the_engine_goes_on', async () => {
  const e = await open(wasm, later);
  const { d } = firstLoad(e, null);
  const t = T0 + HOUR;
  for (const call of [() => e.outcome(d.id, 'impression', t), () => e.share(d.id, 'copy', rnd, t), () => e.channels(t),
    () => e.approve(d.id, t), () => e.landing('ABCDEF23', t), () => e.conversion(t), () => e.approval(0, d.id, 'a'.repeat(32), t),
    () => e.takeBatch('k', t)]) {
    assert.throws(call, /Loopwise: not loaded/);
  }
  // Nothing was changed by the refused calls: once loaded, the same as the whole module.
  await e.more();
  assert.equal(e.full, 1);
  const w = await open(whole);
  const dw = firstLoad(w, null).d;
  assert.deepEqual(later_(e, d), later_(w, dw));
});

test('once_loaded_the_pair_answers_exactly_as_the_whole_module', async () => {
  const a = await open(wasm, later), b = await open(whole);
  const fa = firstLoad(a, null), fb = firstLoad(b, null);
  await a.more();
  const la = later_(a, fa.d);
  assert.deepEqual(la, later_(b, fb.d));
  // (The sequence reached what it is meant to: a share token, the approval hold and its request.)
  assert.ok(la[0] && /"kind":"decision"/.test(la[0].body), 'the decision of the first load is taken: ' + JSON.stringify(la[0]));
  assert.match(la[2], /^[0-9a-f]{32}$/);
  assert.equal(la[3] && la[3].code, 'approval', JSON.stringify(la[3]));
  assert.equal(la[4], la[3].id);
  assert.ok(la[5] === '1' && /"approval-request"/.test(la[6].body) && /"landing"/.test(la[6].body), JSON.stringify(la.slice(5, 7)));
  // Two engines on one page share nothing: a second pair loads its own second module.
  const c = await open(wasm, later);
  assert.equal(c.full, false);
});

test('a_second_module_that_failed_to_load_is_fetched_again_at_the_next_call', async () => {
  let calls = 0;
  const e = await loadEngine({ wasm, config, seed, later: () => (++calls === 1 ? Promise.reject(Error('offline')) : later) });
  await assert.rejects(e.more(), /offline/);
  assert.equal(e.full, false);
  await e.more();
  assert.equal(calls, 2);
  assert.equal(e.full, 1);
  await e.more(); // loaded once
  assert.equal(calls, 2);
});

test('the_split_moves_code_out_of_the_first_module', () => {
  const sizes = (b) => WebAssembly.Module.imports(new WebAssembly.Module(b));
  // The first module imports only placeholders (one per function moved), the second what it
  // shares with the first.
  const p = sizes(wasm);
  assert.ok(p.length >= 6 && p.every((i) => i.module === 'p' && i.kind === 'function'), JSON.stringify(p));
  const s = sizes(later);
  assert.ok(s.every((i) => i.module === 'x'));
  assert.ok(s.some((i) => i.kind === 'memory') && s.some((i) => i.kind === 'table'));
  assert.ok(later.length > 2000, 'the second module holds the code: ' + later.length + ' B');
});
