// The shared decision cases on the WASM build in Node, and byte-for-byte parity of every
// decision (ids, actions, probabilities, reasons) and the final batch with the native build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { loadEngine } from '../../web/src/engine.js';
import { loadCases, runCase, root, casesDir } from '../cases/run-cases.mjs';

const wasmPath = join(root, process.env.LW_WASM || 'web/dist/loopwise.wasm');
const nativeDir = join(root, process.env.LW_NATIVE_DIR || 'build/native');
const runner = join(nativeDir, 'tests/unit/test_cases');
const wasm = readFileSync(wasmPath);

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
