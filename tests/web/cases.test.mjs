// cases.test.mjs: the shared cases inside Chromium. The function groups
// (tests/cases/functions.json) run on loopwise-test.wasm and the bundled readDisplay with the
// WASM-in-Node test's runner (tests/cases/run-functions.mjs). The decision cases
// (tests/cases/decisions/*.json) run on
// the shipped web/dist/loopwise.js + loopwise.wasm, with the same runner as the WASM-in-Node
// test (tests/cases/run-cases.mjs, sent into the page as source), and each trace compared byte
// for byte with the native runner's. The engine is web/src/engine.js from the test entry
// (tests/web/test-entry.js, window.LoopwiseTest: test hooks are not on the shipped global) over
// the shipped loopwise.wasm; the page also loads the shipped loopwise.js.
//
//   node --test tests/web/cases.test.mjs        (after: bash src/scripts/build.sh)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCases, runCase, casesDir, root } from '../cases/run-cases.mjs';
import { loadFunctions, runFunctions, SPEC_MAJOR } from '../cases/run-functions.mjs';
import { dist, launchBrowser, nativeDir, requireBuilt, startDemo, testScript } from './helpers.mjs';

const distDir = process.env.LW_WEB_DIST || dist;
const runner = join(nativeDir, 'tests/unit/test_cases');
const testWasm = join(root, process.env.LW_TEST_WASM || 'build/wasm/src/wasm/loopwise-test.wasm');
requireBuilt(join(distDir, 'loopwise.js'), join(distDir, 'loopwise.wasm'), runner, testWasm);

let browser, demo, page;

before(async () => {
  browser = await launchBrowser();
  demo = await startDemo(distDir);
  page = await browser.newPage();
  // The test module is never in web/dist: the page gets it from the build, under /test/.
  await page.route(demo.url + 'test/loopwise-test.wasm',
    (r) => r.fulfill({ contentType: 'application/wasm', body: readFileSync(testWasm) }));
  await page.goto(demo.url + 'dist/');
  // The tag alone: no endpoint, so nothing is sent anywhere; config and wasm next to the script.
  await page.addScriptTag({ url: '/dist/loopwise.js' });
  assert.equal(await page.evaluate(() => window.Loopwise.ready), true, 'the shipped bundle started');
  assert.equal(await page.evaluate(() => 'loadEngine' in window.Loopwise), false, 'no test hooks on the shipped global');
  await page.addScriptTag({ content: await testScript() });
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

test('chromium: functions.json: every function group agrees with the shared cases', async () => {
  const doc = loadFunctions();
  assert.ok(Object.keys(doc.groups).length >= 7, 'the function groups are there');
  const failures = await page.evaluate(async ({ src, doc, major, config }) => {
    const runFunctions = new Function('return ' + src)();
    const T = window.LoopwiseTest;
    const engine = await T.loadTestEngine({
      wasm: fetch('/test/loopwise-test.wasm').then((r) => r.arrayBuffer()), config: Uint8Array.from(config), seed: new Uint8Array(16),
    });
    try {
      return runFunctions({ ...engine, readDisplay: T.readDisplay }, doc, major);
    } finally {
      engine.free();
    }
  }, { src: runFunctions.toString(), doc, major: SPEC_MAJOR, config: [...loadCases()[0].config] });
  assert.deepEqual(failures, []);
});

const cases = loadCases();
test('there are shared cases to run', () => assert.ok(cases.length >= 4));

for (const c of cases) {
  test(`chromium: ${c.file}: ${c.name}`, async () => {
    const { trace, failures } = await page.evaluate(async ({ src, config, seed, model, data }) => {
      const runCase = new Function('return ' + src)();
      const engine = await window.LoopwiseTest.loadEngine({
        wasm: fetch('/dist/loopwise.wasm').then((r) => r.arrayBuffer()), config: Uint8Array.from(config), seed: Uint8Array.from(seed),
      });
      try {
        const { trace, failures } = runCase(engine, data, model && Uint8Array.from(model));
        return { trace, failures };
      } finally {
        engine.free();
      }
    }, { src: runCase.toString(), config: [...c.config], seed: [...c.seed], model: c.model && [...c.model], data: c.data });
    assert.deepEqual(failures, []);
    const native = execFileSync(runner, ['--trace', join(casesDir, c.file)], { encoding: 'utf8' });
    assert.equal(trace.join('\n') + '\n', native, 'Chromium and native traces differ');
  });
}
