// compile-config.mjs: loopwise-config (the native checker and compiler) from Node, for the
// web build and the JS tests.
//
//   import { compileConfig } from '../src/tools/compile-config.mjs';
//   const lwc = compileConfig(jsonText);        // Uint8Array; throws with the JSON path on a bad config
//
// The binary is $LW_CONFIG_TOOL, else loopwise-config under $LW_NATIVE_DIR (default build/native).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function configTool() {
  const tool = process.env.LW_CONFIG_TOOL ||
    join(resolve(root, process.env.LW_NATIVE_DIR || 'build/native'), 'src/tools/loopwise-config');
  if (!existsSync(tool)) throw Error(`loopwise-config not found at ${tool} (build it: bash src/scripts/build.sh)`);
  return tool;
}

// JSON text (or an object, stringified) -> the compiled config's bytes.
export function compileConfig(json) {
  const input = typeof json === 'string' ? json : JSON.stringify(json);
  const r = spawnSync(configTool(), ['compile', '-', '-o', '-'], { input, maxBuffer: 1 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw Error(String(r.stderr).trim().replace(/^-: /, '') || `loopwise-config exited ${r.status}`);
  return new Uint8Array(r.stdout);
}
