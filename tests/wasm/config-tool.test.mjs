// loopwise-config.wasm (the config checker the demo's editor runs in the browser) against the
// native loopwise-config: the same compiled bytes for good configs, the same JSON-path message
// for bad ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../cases/run-cases.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';
import { loadConfigTool } from '../../web/demo/config-tool.js';

const wasmPath = join(root, process.env.LW_CONFIG_WASM || 'build/wasm/src/wasm/loopwise-config.wasm');
const tool = await loadConfigTool(readFileSync(wasmPath));
const json = readFileSync(join(root, 'models/referral.json'), 'utf8');
const native = (text) => {
  try { return { ok: true, bytes: compileConfig(text) }; } catch (e) { return { ok: false, error: e.message }; }
};

test('the default config compiles to the same bytes as natively', () => {
  const r = tool.compile(json);
  assert.equal(r.ok, true, r.error);
  assert.deepEqual(r.bytes, native(json).bytes);
});

test('decimals and exponents compile exactly as natively (host strtod)', () => {
  const c = JSON.parse(json);
  c.variants[0].cost = 0.17336500000000002;
  c.variants[1].cost = 2.5e1;
  c.explore.floor = 1e-3;
  const text = JSON.stringify(c);
  assert.deepEqual(tool.compile(text).bytes, native(text).bytes);
});

test('bad configs get the native checker\'s path and message', () => {
  const base = JSON.parse(json);
  const bad = [
    '{"version": 1,',
    '[1, 2]',
    JSON.stringify({ ...base, milestones: [{ event: 'project_completed', after: -3 }] }),
    JSON.stringify({ ...base, milestones: [{ event: 'nope', after: 2 }] }),
    JSON.stringify({ ...base, evnets: [] }),
    JSON.stringify({ ...base, variants: [base.variants[0], base.variants[0]] }),
    JSON.stringify({ ...base, share: { url: 'https://x.example/' } }),
    JSON.stringify({ ...base, caps: { max_prompts: 0 } }),
    JSON.stringify({ ...base, approval: { attribute: 'seats', values: ['huge'] } }),
  ];
  for (const text of bad) {
    const r = tool.compile(text), n = native(text);
    assert.equal(r.ok, false, text);
    assert.equal(n.ok, false, text);
    assert.equal(r.error, n.error);
    assert.match(r.error, /^[^:]+: /, 'path: problem');
  }
  assert.equal(tool.compile(bad[2]).error, 'milestones[0].after: expected a positive integer, got -3');
});
