// The shared cases on the WASM build in Node: the function groups (tests/cases/functions.json)
// on loopwise-test.wasm, and the decision cases on the shipped module with byte-for-byte
// parity of every decision (ids, actions, probabilities, reasons) and the final batch with the
// native build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { loadEngine, readDisplay } from '../../web/src/engine.js';
import { loadCases, runCase, root, casesDir } from '../cases/run-cases.mjs';
import { loadFunctions, runFunctions, SPEC_MAJOR } from '../cases/run-functions.mjs';
import { loadTestEngine } from './test-engine.mjs';

const wasmPath = join(root, process.env.LW_WASM || 'web/dist/loopwise.wasm');
const nativeDir = join(root, process.env.LW_NATIVE_DIR || 'build/native');
const runner = join(nativeDir, 'tests/unit/test_cases');
const wasm = readFileSync(wasmPath);
const testWasm = readFileSync(join(root, process.env.LW_TEST_WASM || 'build/wasm/src/wasm/loopwise-test.wasm'));

test('wasm: functions.json: every function group agrees with the shared cases', async () => {
  const doc = loadFunctions();
  assert.ok(Object.keys(doc.groups).length >= 7, 'the function groups are there');
  const engine = await loadTestEngine({ wasm: testWasm, config: loadCases()[0].config, seed: new Uint8Array(16) });
  try {
    assert.deepEqual(runFunctions({ ...engine, readDisplay }, doc, SPEC_MAJOR), []);
  } finally {
    engine.free();
  }
});

const cases = loadCases();
test('there are shared cases to run', () => assert.ok(cases.length >= 4));

for (const c of cases) {
  test(`wasm: ${c.file}: ${c.name}`, async () => {
    const engine = await loadEngine({ wasm, config: c.config, seed: c.seed });
    const { trace, failures } = runCase(engine, c.data, c.model);
    assert.deepEqual(failures, []);
    assert.ok(trace.length > 1);
    const native = execFileSync(runner, ['--trace', join(casesDir, c.file)], { encoding: 'utf8' });
    assert.equal(trace.join('\n') + '\n', native, 'WASM and native traces differ');
  });
}

test('native runner is the build under test', () => assert.ok(existsSync(runner), runner));
