// loopwise-config.wasm (the config checker the demo's editor runs in the browser) against the
// native loopwise-config: the same compiled bytes for good configs, the same JSON-path message
// for bad ones. Also the native checker's every-error report and the config's JSON Schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
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

// ---- the native checker's every-error report and the config's JSON Schema ----------------
const configTool = join(root, process.env.LW_NATIVE_DIR || 'build/native', 'src/tools/loopwise-config');
const runTool = (args, input) => spawnSync(configTool, args, { input, encoding: 'utf8' });

test('check reports every error in a file at once, each with its JSON path', () => {
  const base = JSON.parse(json);
  const bad = {
    ...base,
    evnets: [],
    caps: { max_prompts: 0 },
    milestones: [{ event: 'nope', after: 2 }],
    share: { url: 'http://acme.example/join?ref={code}' },
  };
  const dir = mkdtempSync(join(tmpdir(), 'lw-config-'));
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify(bad));
  const r = runTool(['check', file]);
  rmSync(dir, { recursive: true });
  assert.equal(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  assert.deepEqual(lines.slice(0, -1).map((l) => l.slice(file.length + 2).replace(/:.*/, '')).sort(),
    ['caps.max_prompts', 'evnets', 'milestones[0].event', 'share.url']);
  assert.equal(lines.at(-1), `${file}: 4 errors`);
  assert.match(r.stderr, /share\.url: must be an https:\/\/ link \(http:\/\/ only on localhost or 127\.0\.0\.1\)/);
});

// A validator for the JSON Schema keywords web/config.schema.json uses (no validator is in
// node_modules, and adding one is another helper's call). The test first checks that the
// schema uses no other keyword, so nothing in it goes unchecked here.
const KEYWORDS = new Set(['$schema', '$comment', 'title', 'description', 'default', 'type', 'properties',
  'required', 'additionalProperties', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'items',
  'minItems', 'maxItems', 'uniqueItems', 'allOf', 'propertyNames', 'maxProperties', 'enum']);
function keywordsOf(s, out = new Set()) {
  for (const [k, v] of Object.entries(s)) {
    out.add(k);
    if (k === 'properties') for (const sub of Object.values(v)) keywordsOf(sub, out);
    else if (k === 'allOf') for (const sub of v) keywordsOf(sub, out);
    else if (['items', 'additionalProperties', 'propertyNames'].includes(k) && typeof v === 'object') keywordsOf(v, out);
  }
  return out;
}
function validate(s, v, path = '', errs = []) {
  const fail = (m) => errs.push(`${path || '(top level)'}: ${m}`);
  const type = Array.isArray(v) ? 'array' : v === null ? 'null' : Number.isInteger(v) ? 'integer' : typeof v;
  if (s.type && !(s.type === type || (s.type === 'number' && type === 'integer'))) return fail(`not ${s.type}`), errs;
  if (s.minimum !== undefined && v < s.minimum) fail(`below ${s.minimum}`);
  if (s.maximum !== undefined && v > s.maximum) fail(`above ${s.maximum}`);
  const chars = typeof v === 'string' ? [...v].length : 0;
  if (s.minLength !== undefined && chars < s.minLength) fail('too short');
  if (s.maxLength !== undefined && chars > s.maxLength) fail('too long');
  if (s.pattern && !new RegExp(s.pattern, 'u').test(v)) fail(`does not match ${s.pattern}`);
  if (s.enum && !s.enum.some((x) => JSON.stringify(x) === JSON.stringify(v))) fail(`not one of ${s.enum.join(', ')}`);
  if (type === 'array') {
    if (s.minItems !== undefined && v.length < s.minItems) fail('too few items');
    if (s.maxItems !== undefined && v.length > s.maxItems) fail('too many items');
    if (s.uniqueItems && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) fail('items repeat');
    if (s.items) v.forEach((x, i) => validate(s.items, x, `${path}[${i}]`, errs));
  }
  if (type === 'object') {
    const keys = Object.keys(v);
    for (const k of s.required || []) if (!(k in v)) fail(`${k} is required`);
    if (s.maxProperties !== undefined && keys.length > s.maxProperties) fail('too many properties');
    for (const k of keys) {
      const at = path ? `${path}.${k}` : k;
      if (s.propertyNames) validate(s.propertyNames, k, at, errs);
      if (s.properties && k in s.properties) validate(s.properties[k], v[k], at, errs);
      else if (s.additionalProperties === false) errs.push(`${at}: unknown field`);
      else if (typeof s.additionalProperties === 'object') validate(s.additionalProperties, v[k], at, errs);
    }
  }
  for (const sub of s.allOf || []) validate(sub, v, path, errs);
  return errs;
}

const schemaPath = join(root, 'web/config.schema.json');
const schema = JSON.parse(readFileSync(schemaPath, 'utf8'));

test('web/config.schema.json is what loopwise-config schema generates', () => {
  const r = runTool(['schema']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(schemaPath, 'utf8'), r.stdout,
    'regenerate it: build/native/src/tools/loopwise-config schema > web/config.schema.json');
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.match(schema.$comment, /loopwise-config schema > web\/config\.schema\.json/);
});

test('the schema accepts every shipped config and refuses what the checker refuses', () => {
  assert.deepEqual([...keywordsOf(schema)].filter((k) => !KEYWORDS.has(k)), [], 'keywords this test checks');
  const shipped = [readFileSync(join(root, 'models/referral.json'), 'utf8'),
    readFileSync(join(root, 'src/tools/monthly-program.json'), 'utf8'),
    ...readdirSync(join(root, 'tests/cases/decisions')).map((f) =>
      JSON.parse(readFileSync(join(root, 'tests/cases/decisions', f), 'utf8')).config)
      .filter((c) => typeof c === 'object').map((c) => JSON.stringify(c))];
  shipped.push(JSON.stringify({ $schema: '../web/config.schema.json', ...JSON.parse(json) })); // as an editor links it
  for (const text of shipped) {
    assert.equal(native(text).ok, true);
    assert.deepEqual(validate(schema, JSON.parse(text)), [], text.slice(0, 80));
  }
  const base = JSON.parse(json);
  const bad = [
    [{ ...base, evnets: [] }, 'evnets: unknown field'],
    [{ ...base, version: 2 }, 'version: above 1'],
    [{ ...base, holdout: 0.7 }, 'holdout: above 0.5'],
    [{ ...base, caps: { max_prompts: 2.5 } }, 'caps.max_prompts: not integer'],
    [{ ...base, explore: { not_now: 0.6 } }, 'explore.not_now: above 0.5'],
    [{ ...base, share: { url: 'http://acme.example/?ref={code}' } }, 'share.url: does not match'],
    [{ ...base, share: { url: 'https://acme.example/' } }, 'share.url: does not match'],
    [{ ...base, events: ['a', 'a'] }, 'events: items repeat'],
    [{ ...base, events: ['has space'] }, 'events[0]: does not match'],
    [{ ...base, milestones: [{ after: 3 }] }, 'milestones[0]: event is required'],
    [{ ...base, variants: [{ ...base.variants[0], enabled: 'no' }] }, 'variants[0].enabled: not boolean'],
    [{ ...base, variants: [{ ...base.variants[0], title: '' }] }, 'variants[0].title: too short'],
    [{ ...base, attributes: { plan: [] } }, 'attributes.plan: too few items'],
    [{ ...base, approval: { attribute: 'plan' } }, 'approval: values is required'],
    [{ ...base, fairness: { min_exposure_ratio: 0.8 } }, 'fairness: attribute is required'],
    [{ ...base, channels: ['copy', 'fax'] }, 'channels[1]: not one of'],
    [{ ...base, channels: ['x', 'x'] }, 'channels: items repeat'],
    [{ ...base, channels: [] }, 'channels: too few items'],
    [{ ...base, preview: { allow_url: 'yes' } }, 'preview.allow_url: not boolean'],
  ];
  for (const [c, why] of bad) {
    const text = JSON.stringify(c);
    assert.equal(native(text).ok, false, `the checker refuses: ${why}`);
    const errs = validate(schema, c);
    assert.ok(errs.some((e) => e.startsWith(why)), `${why}: got ${JSON.stringify(errs)}`);
  }
});
