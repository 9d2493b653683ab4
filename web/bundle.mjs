// bundle.mjs: scripts from entry modules, bundled and minified the way web/dist's are.
// web/build.mjs builds the shipped files with it; the browser tests build their test entry
// (tests/web/test-entry.js, never shipped) with it, so both run the same minified code.
import { build } from 'esbuild';
import { minify } from 'terser';

const TARGET = ['chrome75', 'firefox79', 'safari15'];

// esbuild bundles and lowers the syntax for the supported browsers; terser minifies (its
// second and third compress passes and mangler make the script about 110 B of gzip smaller than
// esbuild's; the third pass alone 14 B of loopwise.js).
async function bundle(entry, format, external = []) {
  const bundled = await build({
    entryPoints: [entry],
    write: false,
    bundle: true,
    format,
    external,
    sourcemap: false,
    legalComments: 'none',
    target: TARGET,
    logLevel: 'warning',
  });
  const min = await minify(bundled.outputFiles[0].text, {
    ecma: 2019,
    module: format === 'esm',
    compress: { passes: 3 },
    mangle: true,
    format: { comments: false },
  });
  return min.code;
}

// A classic script: one IIFE (the script tag's loopwise.js, the test entry).
export const bundleScript = (entry) => bundle(entry, 'iife');

// An ES module (the package's loopwise.mjs, the prompt and transport chunks); `external`:
// imports left as they are (the chunks next to it, which the script tag's build shares).
export const bundleModule = (entry, external) => bundle(entry, 'esm', external);
