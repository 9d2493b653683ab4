// bundle.mjs: one script from an entry module, bundled and minified the way web/dist/loopwise.js
// is. web/build.mjs builds the shipped script with it; the browser tests build their test entry
// (tests/web/test-entry.js, never shipped) with it, so both run the same minified code.
import { build } from 'esbuild';
import { minify } from 'terser';

// esbuild bundles and lowers the syntax for the supported browsers; terser minifies (its
// second compress pass and mangler make the script about 100 B of gzip smaller than esbuild's).
export async function bundleScript(entry) {
  const bundled = await build({
    entryPoints: [entry],
    write: false,
    bundle: true,
    format: 'iife',
    sourcemap: false,
    legalComments: 'none',
    target: ['chrome75', 'firefox79', 'safari15'],
    logLevel: 'warning',
  });
  const min = await minify(bundled.outputFiles[0].text, {
    ecma: 2019,
    compress: { passes: 2 },
    mangle: true,
    format: { comments: false },
  });
  return min.code;
}
