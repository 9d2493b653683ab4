// run-cases.mjs: the JavaScript runner for tests/cases/decisions/*.json (format in
// tests/cases/README.md). Used by the WASM-in-Node test and, on the shipped bundle, by the
// browser test, so every build runs the same cases as the native C runner.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileConfig } from '../../src/tools/native-tools.mjs';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const casesDir = join(root, 'tests/cases/decisions');

// [{ file, name, config (compiled, Uint8Array), seed (Uint8Array(16)), model, data }]
export function loadCases() {
  return readdirSync(casesDir).filter((f) => f.endsWith('.json')).sort().map((f) => {
    const data = JSON.parse(readFileSync(join(casesDir, f), 'utf8'));
    const config = compileConfig(typeof data.config === 'string'
      ? readFileSync(join(root, data.config), 'utf8') : data.config);
    const seed = new Uint8Array(Uint32Array.from(data.seed).buffer);
    const model = data.model ? new Uint8Array(readFileSync(join(root, data.model))) : null;
    return { file: f, name: data.name, config, seed, model, data };
  });
}

// Run one case's steps on an engine made from its config and seed (the engine API of
// web/src/engine.js). Returns { trace: [lines], failures: [messages] }. Pure: no Node APIs,
// so it can also be sent into a browser page as a string (runCase.toString()).
export function runCase(engine, data, model) {
  const trace = [], failures = [];
  const at = (s) => data.start + Math.floor(s.at_h * 3600000 + 0.5);
  let lastId = '';
  const check = (d, expect) => {
    for (const [k, v] of Object.entries(expect)) {
      const ok = k === 'p_by_action' ? v[d.action] === d.p : JSON.stringify(d[k]) === JSON.stringify(v);
      if (!ok) failures.push(`decision ${JSON.stringify(d)} does not match ${JSON.stringify(expect)} (${k})`);
    }
  };
  if (model) engine.setModel(model);
  // model_status: what the engine says of the loaded model ('none', 'ready', 'no_data').
  if (data.model_status !== undefined && engine.modelStatus() !== data.model_status) {
    failures.push(`model status ${engine.modelStatus()}, expected ${data.model_status}`);
  }
  for (const s of data.steps) {
    const t = at(s);
    if (s.approve) {
      let d = null;
      try { d = engine.approve(lastId, t, 0); } catch (e) { d = null; }
      if (d) trace.push(JSON.stringify(d));
      if (!!d !== !!s.expect) failures.push(`approve at ${s.at_h}h: expected ${s.expect ? 'a prompt' : 'a refusal'}`);
      else if (d) check(d, s.expect);
    } else if (s.attribute) {
      engine.attribute(s.attribute[0], s.attribute[1]);
    } else if (s.flags) {
      engine.flags(s.flags.gpc, s.flags.dnt, s.flags.busy);
    } else if (s.share !== undefined) {
      const token = engine.share(lastId, s.share, Uint8Array.from(s.random), t);
      if (s.token !== undefined && token !== s.token) failures.push(`share at ${s.at_h}h: token ${token}, expected ${s.token}`);
    } else if (s.landing !== undefined) {
      engine.landing(s.landing, t, s.token);
    } else if (s.conversion) {
      engine.conversion(t);
    } else if (s.track !== undefined) {
      let d = null;
      for (let i = 0; i < (s.repeat || 1); i++) {
        d = engine.track(s.track, t, s.tz || 0, { value: s.value, label: s.label });
        if (d) {
          trace.push(JSON.stringify(d));
          lastId = d.id;
          if (s.expect) check(d, s.expect);
          if (s.close && d.prompt) engine.outcome(d.id, 'close', t);
        }
      }
      if (!!d !== !!s.expect) failures.push(`step at ${s.at_h}h: expected ${s.expect ? 'a decision' : 'no decision'}, got ${JSON.stringify(d)}`);
    } else if (s.outcome !== undefined) {
      engine.outcome(lastId, s.outcome, t);
    } else if (s.consent !== undefined) {
      engine.consent(s.consent, t);
    }
  }
  // The outbox's records, counted in the batch that takes them all (the shipped engine API has
  // no count: the cases' outboxes fit in one batch, and a second one would be a failure too).
  const batch = engine.takeBatch('case-key', data.start, 60000);
  const held = batch ? JSON.parse(batch.body).events.length : 0;
  if (held !== data.outbox || engine.takeBatch('case-key', data.start, 60000)) {
    failures.push(`outbox holds ${held}${batch ? '+' : ''} records, expected ${data.outbox}`);
  }
  trace.push(batch ? batch.body : '');
  return { trace, failures };
}
