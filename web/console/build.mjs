// build.mjs: build the console page into web/console/dist/, which loopwise-ingest serves at
// /console (its console_assets setting; the build's default is this directory).
//
//   node web/console/build.mjs     (run by src/scripts/build.sh)
//
//   dist/index.html   src/index.html as is (no inline script or style: the server's CSP forbids them)
//   dist/console.js   src/console.js and uPlot (npm) bundled by esbuild: one IIFE, minified
//   dist/console.css  src/console.css and uPlot's stylesheet, bundled the same way
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const common = { bundle: true, minify: true, legalComments: 'eof', logLevel: 'warning', target: 'es2020' };
await build({ ...common, entryPoints: [join(here, 'src/console.js')], outfile: join(dist, 'console.js'), format: 'iife' });
await build({ ...common, entryPoints: [join(here, 'src/console.css')], outfile: join(dist, 'console.css') });
copyFileSync(join(here, 'src/index.html'), join(dist, 'index.html'));
console.log(`web/console/build.mjs: wrote ${resolve(dist)}`);
