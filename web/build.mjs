// build.mjs: write exactly what a page downloads into web/dist/.
//
//   node web/build.mjs            (run by src/scripts/build.sh after the WASM build)
//
//   web/dist/loopwise.js     web/src/loopwise.js bundled by esbuild, minified by terser (bundle.mjs): one IIFE, no source map
//   web/dist/loopwise.wasm   build/wasm/src/wasm/loopwise.wasm, or the file named by $LW_WASM
//   web/dist/referral.lwc    models/referral.json checked and compiled by loopwise-config (the
//                            runtime reads only the compiled form; see models/FORMAT.md)
//   web/dist/loopwise.lwm    models/default.lwm without its metadata (loopwise-model strip): the
//                            model a runtime starts with (see web/src/model.js)
//
// web/dist is emptied first so nothing stale (an old source map, a renamed file) ships.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { compileConfig, stripModel } from '../src/tools/native-tools.mjs';
import { bundleScript } from './bundle.mjs';

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

writeFileSync(join(dist, 'loopwise.js'), await bundleScript(join(root, 'web/src/loopwise.js')));
copyFileSync(wasm, join(dist, 'loopwise.wasm'));
try {
  writeFileSync(join(dist, 'referral.lwc'), compileConfig(readFileSync(config, 'utf8')));
  writeFileSync(join(dist, 'loopwise.lwm'), stripModel(model));
} catch (e) {
  console.error(`web/build.mjs: ${e.message}`);
  process.exit(1);
}

let raw = 0, gz = 0;
for (const f of ['loopwise.js', 'loopwise.wasm', 'referral.lwc', 'loopwise.lwm']) {
  const p = join(dist, f), n = statSync(p).size, z = gzipSync(readFileSync(p), { level: 9 }).length;
  raw += n; gz += z;
  console.log(`web/dist/${f.padEnd(14)} ${String(n).padStart(7)} B  ${String(z).padStart(6)} B gzip -9`);
}
console.log(`web/dist total          ${String(raw).padStart(7)} B  ${String(gz).padStart(6)} B gzip -9 (budget 20480)`);
// Over budget is a warning here (the build must not block the other components);
// tests/web/size.test.mjs is what fails on it.
if (gz > 20480) console.warn(`web/build.mjs: warning: download budget exceeded: ${gz} B gzip > 20480 B`);
