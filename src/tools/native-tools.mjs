// native-tools.mjs: the native loopwise-config and loopwise-model from Node, for the web build
// and the JS tests.
//
//   import { compileConfig, stripModel } from '../src/tools/native-tools.mjs';
//   const lwc = compileConfig(jsonText);   // Uint8Array; throws with the JSON path on a bad config
//   const lwm = stripModel('models/default.lwm');  // the model without its metadata (what a page needs)
//
// The binaries are $LW_CONFIG_TOOL / $LW_MODEL_TOOL, else under $LW_NATIVE_DIR (default build/native).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function tool(name, override) {
  const path = override || join(resolve(root, process.env.LW_NATIVE_DIR || 'build/native'), 'src/tools', name);
  if (!existsSync(path)) throw Error(`${name} not found at ${path} (build it: bash src/scripts/build.sh)`);
  return path;
}

// Run a tool with input on stdin and its output on stdout; throws with its message.
function run(path, args, input) {
  const r = spawnSync(path, args, { input, maxBuffer: 16 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw Error(String(r.stderr).trim().replace(/^(loopwise-\w+: )?-: /, '') || `${path} exited ${r.status}`);
  return new Uint8Array(r.stdout);
}

// JSON text (or an object, stringified) -> the compiled config's bytes.
export function compileConfig(json) {
  return run(tool('loopwise-config', process.env.LW_CONFIG_TOOL), ['compile', '-', '-o', '-'],
    typeof json === 'string' ? json : JSON.stringify(json));
}

// A model file -> its bytes without the metadata.
export function stripModel(path) {
  return run(tool('loopwise-model', process.env.LW_MODEL_TOOL), ['strip', path, '-o', '-']);
}
