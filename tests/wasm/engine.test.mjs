// The WASM engine through web/src/engine.js: errors cross the boundary as clear messages,
// damaged snapshots fall back conservatively, batches are valid wire batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadEngine } from '../../web/src/engine.js';
import { loadTestEngine } from './test-engine.mjs';
import { root } from '../cases/run-cases.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';

const wasm = readFileSync(join(root, process.env.LW_WASM || 'web/dist/loopwise.wasm'));
// The shipped module plus the exports only tests call (outbox count, memory readings).
const testWasm = readFileSync(join(root, process.env.LW_TEST_WASM || 'build/wasm/src/wasm/loopwise-test.wasm'));
const model = new Uint8Array(readFileSync(join(root, 'models/default.lwm')));
const json = readFileSync(join(root, 'models/referral.json'), 'utf8');
const config = compileConfig(json);
const T0 = 1767614400000;
const seed = (n) => new Uint8Array(16).fill(n);

test('a bad config is refused by the compiler with its JSON path and problem', () => {
  const bad = JSON.parse(json);
  bad.milestones[1].after = -3;
  assert.throws(() => compileConfig(bad), /milestones\[1\]\.after: expected a positive integer, got -3/);
  assert.throws(() => compileConfig('{"version": 1,'), /not valid JSON near line 1/);
});

test('the runtime reads only compiled configs, and refuses damaged ones', async () => {
  await assert.rejects(loadEngine({ wasm, config: new TextEncoder().encode(json), seed: seed(1) }),
    /Loopwise config: not a compiled Loopwise config/);
  const damaged = config.slice();
  damaged[40] ^= 1;
  await assert.rejects(loadEngine({ wasm, config: damaged, seed: seed(1) }), /checksum mismatch/);
  await assert.rejects(loadEngine({ wasm, config: config.subarray(0, 100), seed: seed(1) }), /checksum mismatch/);
  const v4 = config.slice();
  v4[4] = 4; // one past the compiled format this runtime reads (3: approval.send)
  await assert.rejects(loadEngine({ wasm, config: v4, seed: seed(1) }), /version is unknown to this runtime/);
});

test('the display part carries the texts the widget shows', async () => {
  const e = await loadEngine({ wasm, config: config.buffer, seed: seed(1) }); // an ArrayBuffer works too
  const src = JSON.parse(json);
  assert.deepEqual(e.config.share, src.share);
  assert.deepEqual(e.config.variants.map((v) => [v.title, v.message, v.referrer_reward, v.referee_reward]),
    src.variants.map((v) => [v.title, v.message, v.referrer_reward, v.referee_reward]));
  assert.deepEqual(e.config.ladder, src.ladder);
  assert.equal(e.config.model.refresh_hours, src.model.refresh_hours);
});

test('decimals in the config reach the engine exactly as natively', async () => {
  const c = JSON.parse(json);
  c.variants[0].cost = 0.17336500000000002;
  c.variants[0].weight = 1e2; // an exponent form of 100
  c.explore.not_now = 0; // the variants' weights alone decide
  const e = await loadEngine({ wasm, config: compileConfig(JSON.stringify(c)), seed: seed(1) });
  for (let i = 0; i < 2; i++) assert.equal(e.track('project_completed', T0, 0), null);
  const d = e.track('project_completed', T0, 0);
  assert.equal(d.p, d.action === 'credit_10' ? 0.990099 : 0.009901); // 100 : 1
});

test('an unknown event throws a clear error and changes nothing', async () => {
  const e = await loadEngine({ wasm, config, seed: seed(2) });
  const before = e.snapshot();
  assert.throws(() => e.track('nope', T0, 0), /unknown event 'nope'/);
  assert.deepEqual(e.snapshot(), before);
});

test('snapshot round trip as bytes, and damaged snapshots keep a "no"', async () => {
  const a = await loadEngine({ wasm, config, seed: seed(3) });
  a.consent(false, T0);
  a.track('project_completed', T0, 0);
  const snap = a.snapshot();
  const b = await loadEngine({ wasm, config, seed: seed(4) });
  const own = b.installKey();
  assert.deepEqual(b.restore(snap, T0), { ok: true });
  // After a refusal the snapshot keeps no identity (README "On-device state and privacy"):
  // the restoring engine keeps its own.
  assert.equal(b.installKey(), own);
  assert.notEqual(b.installKey(), a.installKey());
  b.track('project_completed', T0, 0);
  assert.equal(b.track('project_completed', T0, 0).reason, 'suppressed: no consent');
  // With consent the identity is part of the state.
  const given = await loadEngine({ wasm, config, seed: seed(9) });
  given.consent(true, T0);
  const b2 = await loadEngine({ wasm, config, seed: seed(10) });
  assert.deepEqual(b2.restore(given.snapshot(), T0), { ok: true });
  assert.equal(b2.installKey(), given.installKey());
  assert.equal(b2.referralCode(), given.referralCode());

  const c = await loadEngine({ wasm, config, seed: seed(5) });
  const r = c.restore(new TextEncoder().encode('not a snapshot'), T0);
  assert.equal(r.ok, false);
  assert.match(r.error, /consent and history treated as unknown/);
  for (let i = 0; i < 2; i++) c.track('project_completed', T0, 0);
  assert.equal(c.track('project_completed', T0, 0).code, 'history_unknown');
  // A value of another type (say a base64 string an older widget stored) is damage, not a new user.
  const d = await loadEngine({ wasm, config, seed: seed(8) });
  assert.equal(d.restore('bm90IGEgc25hcHNob3Q=', T0).ok, false);
  for (let i = 0; i < 2; i++) d.track('project_completed', T0, 0);
  assert.equal(d.track('project_completed', T0, 0).code, 'history_unknown');
});

test('batches are valid wire batches within the size limit', async () => {
  const e = await loadTestEngine({ wasm: testWasm, config, seed: seed(6) });
  for (let day = 0; day < 200; day++) {
    for (let i = 0; i < 5; i++) {
      const d = e.track('project_completed', T0 + day * 86400000, 0);
      if (d && d.prompt) e.outcome(d.id, 'dismiss', T0 + day * 86400000 + 1000);
    }
  }
  const n = e.pending();
  assert.ok(n > 100, `only ${n} records`);
  let seen = 0, batches = 0;
  const ids = new Set();
  for (let b; (b = e.takeBatch('demo-site-key', T0, 2000));) {
    assert.ok(new TextEncoder().encode(b.body).length <= 2000);
    const j = JSON.parse(b.body);
    assert.equal(j.v, 3); // LW_WIRE_VERSION: 2 added the shares' token and channel, 3 the approval records
    assert.match(j.batch_id, /^[0-9a-f]{32}$/);
    assert.equal(b.id, j.batch_id, 'takeBatch returns the id it wrote into the body');
    ids.add(b.id);
    assert.equal(j.write_key, 'demo-site-key');
    for (const ev of j.events) {
      assert.match(ev.install, /^[0-9a-f]{32}$/);
      assert.match(ev.decision, /^[0-9a-f]{16}$/);
      if (ev.kind === 'decision') assert.ok(ev.p > 0 && ev.p <= 1);
    }
    seen += j.events.length;
    batches++;
  }
  assert.equal(seen, n);
  assert.ok(batches > 5);
  assert.equal(ids.size, batches, 'every batch has its own id');
  assert.equal(e.pending(), 0);
  assert.equal(e.takeBatch('demo-site-key', T0, 2000), null, 'an empty outbox gives no batch');
});

test('linear memory starts small', async () => {
  const e = await loadTestEngine({ wasm: testWasm, config, seed: seed(7) });
  assert.ok(e.memoryBytes() <= 256 * 1024, `${e.memoryBytes()} bytes`);
});

// Batch ids come from a random stream of their own: when (and whether) the host takes batches
// must not change a single later decision. Two engines, one seed, the default model (so the
// choices are random draws); one takes a batch after every call, the other never.
test('taking batches between tracks does not change later decisions', async () => {
  const run = async (flush) => {
    const e = await loadEngine({ wasm, config, seed: seed(9) });
    e.setModel(model);
    const decisions = [];
    for (let i = 0; i < 900; i++) {
      const t = T0 + i * 3 * 3600000;
      const d = e.track(i % 3 ? 'project_completed' : 'feature_discovered', t, 0);
      if (d) {
        decisions.push(JSON.stringify(d));
        if (d.prompt) e.outcome(d.id, i % 2 ? 'dismiss' : 'close', t + 1000);
      }
      if (flush) while (e.takeBatch('demo-site-key', t, 60000));
    }
    return decisions;
  };
  const flushed = await run(true), kept = await run(false);
  assert.ok(flushed.length > 100, `${flushed.length} decisions`);
  assert.ok(new Set(flushed.map((d) => JSON.parse(d).action)).size > 1, 'the model chose more than one action');
  assert.deepEqual(flushed, kept);
});
