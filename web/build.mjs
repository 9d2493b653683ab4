// build.mjs: write into web/dist/ exactly what a page downloads, and the npm package's module.
//
//   node web/build.mjs            (run by src/scripts/build.sh after the WASM build)
//
//   web/dist/loopwise.js         the script tag's entry (web/src/script.js): one IIFE bundled by
//                                esbuild, minified by terser (bundle.mjs), no source map
//   web/dist/loopwise.mjs        the npm package's ES module entry (web/src/index.js, init())
//   web/dist/loopwise-prompt.js  the prompt chunk (web/src/ui.js), an ES module both entries import()
//                                when a decision first says to prompt
//   web/dist/loopwise-net.js     the transport chunk (web/src/transport.js), likewise once there
//                                is something to send
//   web/dist/loopwise-labels-<lang>.js  the prompt's built-in labels in one language
//                                (web/src/labels/<lang>.js), which the prompt chunk imports for a
//                                page in that language (English is in the prompt chunk)
//   web/dist/loopwise-preview.js Loopwise.preview() and debug() (web/src/preview.js): loaded only
//                                by a page that calls them, so no visitor downloads it
//   web/dist/loopwise-queue.js   the queue snippet as a file, for a CSP without 'unsafe-inline'
//   web/dist/loopwise.wasm       build/wasm/src/wasm/loopwise.wasm, or the file named by $LW_WASM
//   web/dist/referral.lwc        models/referral.json checked and compiled by loopwise-config (the
//                                runtime reads only the compiled form; see models/FORMAT.md)
//   web/dist/loopwise.lwm        models/default.lwm without its metadata (loopwise-model strip): the
//                                model a runtime starts with (see web/src/model.js)
//
// web/dist is emptied first so nothing stale (an old source map, a renamed file) ships. The npm
// package is web/ itself (web/package.json lists dist/, index.d.ts, README.md): `npm pack` in web/
// after this build.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { compileConfig, stripModel } from '../src/tools/native-tools.mjs';
import { createHash } from 'node:crypto';
import { bundleModule, bundleScript } from './bundle.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'web/dist');
const wasm = process.env.LW_WASM ? resolve(process.env.LW_WASM) : join(root, 'build/wasm/src/wasm/loopwise.wasm');
const config = join(root, 'models/referral.json');
const model = join(root, 'models/default.lwm');

for (const [what, file] of [['wasm', wasm], ['config', config], ['model', model]]) {
  if (!existsSync(file)) {
    console.error(`web/build.mjs: ${what} not found: ${file}` +
      (what === 'wasm' ? ' (build it with: bash src/scripts/build.sh, or set LW_WASM)' : ''));
    process.exit(1);
  }
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

// The queue snippet: the README shows it inline, with the sha256 a CSP needs to allow it.
export const SNIPPET = 'window.Loopwise = window.Loopwise || { q: [] };';
const CHUNKS = ['./loopwise-prompt.js', './loopwise-net.js', './loopwise-preview.js'];
writeFileSync(join(dist, 'loopwise.js'), await bundleScript(join(root, 'web/src/script.js')));
writeFileSync(join(dist, 'loopwise.mjs'), await bundleModule(join(root, 'web/src/index.js'), CHUNKS));
// (the label chunks: issue 14, a page downloads only its own language's)
const LABELS = readdirSync(join(root, 'web/src/labels')).map((f) => 'loopwise-labels-' + f);
writeFileSync(join(dist, 'loopwise-prompt.js'), await bundleModule(join(root, 'web/src/ui.js'), LABELS.map((f) => './' + f)));
for (const f of LABELS) writeFileSync(join(dist, f), await bundleModule(join(root, 'web/src/labels', f.slice(16))));
writeFileSync(join(dist, 'loopwise-net.js'), await bundleModule(join(root, 'web/src/transport.js')));
writeFileSync(join(dist, 'loopwise-preview.js'), await bundleModule(join(root, 'web/src/preview.js'))); // issue 14
writeFileSync(join(dist, 'loopwise-queue.js'), SNIPPET);
copyFileSync(wasm, join(dist, 'loopwise.wasm'));
try {
  writeFileSync(join(dist, 'referral.lwc'), compileConfig(readFileSync(config, 'utf8')));
  writeFileSync(join(dist, 'loopwise.lwm'), stripModel(model));
} catch (e) {
  console.error(`web/build.mjs: ${e.message}`);
  process.exit(1);
}

// What a script-tag page downloads: the first load (before any prompt, nothing to send) and
// everything. tests/web/bundle.test.mjs guards both and `npm run bench` measures them in a browser.
const INITIAL = ['loopwise.js', 'loopwise.wasm', 'referral.lwc', 'loopwise.lwm'];
const LATER = ['loopwise-prompt.js', 'loopwise-net.js'];
let raw = 0, gz = 0, first = 0;
for (const f of [...INITIAL, ...LATER, 'loopwise.mjs', 'loopwise-queue.js', 'loopwise-preview.js', ...LABELS]) {
  const p = join(dist, f), n = statSync(p).size, z = gzipSync(readFileSync(p), { level: 9 }).length;
  if (INITIAL.includes(f)) first += z;
  if (INITIAL.includes(f) || LATER.includes(f)) { raw += n; gz += z; }
  console.log(`web/dist/${f.padEnd(18)} ${String(n).padStart(7)} B  ${String(z).padStart(6)} B gzip -9`);
}
// A page in one of those languages downloads its label chunk besides: at most this much more.
if (LABELS.length) {
  const most = Math.max(...LABELS.map((f) => gzipSync(readFileSync(join(dist, f)), { level: 9 }).length));
  console.log(`a page in another language: + ${most} B gzip -9 at most (one label chunk)`);
}
console.log(`first load (script tag)     ${String(first).padStart(15)} B gzip -9 (budget 18000)`);
console.log(`everything (script tag) ${String(raw).padStart(10)} B  ${String(gz).padStart(6)} B gzip -9 (budget 23000)`);
console.log(`queue snippet: 'sha256-${createHash('sha256').update(SNIPPET).digest('base64')}'`);
// Over budget is a warning here (the build must not block the other components);
// tests/web/bundle.test.mjs is what fails on it.
if (first > 18000) console.warn(`web/build.mjs: warning: first-load budget exceeded: ${first} B gzip > 18000 B`);
if (gz > 23000) console.warn(`web/build.mjs: warning: download budget exceeded: ${gz} B gzip > 23000 B`);
