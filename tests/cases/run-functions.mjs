// run-functions.mjs: the JavaScript runner for tests/cases/functions.json (format in
// tests/cases/README.md), the function groups every build must agree on. Used by the
// WASM-in-Node test and, inside Chromium, by the browser test, so both run the same checks as
// the native runner (tests/unit/test_cases.c).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileConfig } from '../../src/tools/native-tools.mjs';
import { root } from './run-cases.mjs';

// The spec major version these runners read.
export const SPEC_MAJOR = 1;

// The file with each display_part input compiled as a site would (loopwise-config), as an
// array of bytes: the runtime side reads only the compiled form.
export function loadFunctions() {
  const doc = JSON.parse(readFileSync(join(root, 'tests/cases/functions.json'), 'utf8'));
  const display = doc.groups.display_part || [];
  doc.groups.display_part = display.map(([what, cfg, want]) => [what, [...compileConfig(JSON.stringify(cfg))], want]);
  return doc;
}

// Check every group of doc (loadFunctions()) with fns: the test engine's fnv1a, vwHash, fx,
// fxDecimal, ppmSplit and kindNames (tests/wasm/test-engine.mjs) and readDisplay
// (web/src/engine.js). Returns failure messages. Pure: no Node APIs, no imports, so it can be
// sent into a browser page as a string (runFunctions.toString()).
export function runFunctions(fns, doc, specMajor) {
  const failures = [];
  if (parseInt(doc.specVersion, 10) !== specMajor) return [`spec version ${doc.specVersion}: this runner reads ${specMajor}.x`];
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const run = {
    fnv1a: (s) => fns.fnv1a(s),
    vw_hash: (s) => fns.vwHash(s),
    fx: (v) => fns.fx(v),
    fx_decimal: (q) => fns.fxDecimal(q),
    ppm_split: (w) => fns.ppmSplit(w),
    kind_names: () => fns.kindNames(),
    display_part: (bytes) => fns.readDisplay(Uint8Array.from(bytes)),
  };
  // Key order does not matter in the display part: compare with the keys sorted.
  const sorted = (v) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
    : Array.isArray(v) ? v.map(sorted) : v);
  for (const [group, cases] of Object.entries(doc.groups)) {
    const fn = run[group];
    if (!fn) { failures.push(`${group}: a group this runner does not know`); continue; }
    for (const [what, input, want] of cases) {
      let got;
      try { got = fn(input); } catch (e) { got = 'threw ' + e.message; }
      if (!same(sorted(got), sorted(want))) failures.push(`${group}: ${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
    }
  }
  return failures;
}
