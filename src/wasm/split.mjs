// split.mjs: split loopwise.wasm in two: what a first load runs, and what only a prompt, an
// approval or a referee's landing needs (loopwise-later.wasm, fetched when one of those comes).
//
//   node src/wasm/split.mjs named.wasm primary.wasm secondary.wasm NAME...
//       (run by src/wasm/CMakeLists.txt; named.wasm: the optimised module with its function
//       names, from a link with --profiling-funcs; NAME...: the exports that go second, the
//       LW_LATER ones in binding.c)
//
// The primary keeps every function the other exports reach (wasm-metadce with them as roots
// lists them); binaryen's wasm-split moves the rest into the secondary, which imports the
// primary's memory, function table, stack pointer and the functions it shares with it. Until
// the secondary is instantiated a moved function is a placeholder the loader supplies (import
// module "p"), which throws; the secondary's table segment then replaces the placeholders
// (web/src/engine.js, more()). Each module is shrunk once more (-Oz, names stripped), the names
// wasm-split gives what it shares ("%lw_sb_init", ...) become numbers ("0", "1", ...: the
// other exports are letters and words), and the primary's data is joined into one segment
// (join-data.mjs).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [, , input, primary, secondary, ...later] = process.argv;
const features = ['--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext',
  '--enable-mutable-globals'];
const fail = (m) => { console.error(`split.mjs: ${input}: ${m}`); process.exit(1); };
const run = (tool, args) => execFileSync(tool, [...features, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });

// The sections of a module as [id, body] (a reader as small as what is needed here).
function sections(b) {
  if (b.readUInt32LE(0) !== 0x6d736100) fail('not a WebAssembly module');
  const out = [];
  let p = 8;
  while (p < b.length) {
    const id = b[p++];
    const [len, q] = uleb(b, p);
    out.push([id, b.subarray(q, q + len)]);
    p = q + len;
  }
  return out;
}
function uleb(b, p) {
  let r = 0, s = 0, x;
  do { x = b[p++]; r += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80);
  return [r, p];
}
const uenc = (n) => { const o = []; do { let x = n & 0x7f; n = Math.floor(n / 128); if (n) x |= 0x80; o.push(x); } while (n); return Buffer.from(o); };
const name = (s) => Buffer.concat([uenc(Buffer.byteLength(s)), Buffer.from(s)]);
const str = (b, p) => { const [n, q] = uleb(b, p); return [b.toString('utf8', q, q + n), q + n]; };
// An export entry or an import's description after its names: kind byte, then an index or a type.
function desc(b, p) {
  const kind = b[p++];
  if (kind === 0) return uleb(b, p)[1]; // function: its type
  if (kind === 1) { p += 1; const f = b[p++]; p = uleb(b, p)[1]; return f & 1 ? uleb(b, p)[1] : p; } // table
  if (kind === 2) { const f = b[p++]; p = uleb(b, p)[1]; return f & 1 ? uleb(b, p)[1] : p; } // memory
  if (kind === 3) return p + 2; // global: type, mutability
  fail('an import of an unknown kind');
}
const exportNames = (b) => {
  const e = sections(b).find(([id]) => id === 7);
  const names = [];
  if (!e) return names;
  let [n, p] = uleb(e[1], 0);
  while (n--) { let s; [s, p] = str(e[1], p); names.push(s); p = uleb(e[1], p + 1)[1]; }
  return names;
};
// The function names in a module's "name" custom section.
function functionNames(b) {
  const c = sections(b).find(([id, body]) => id === 0 && str(body, 0)[0] === 'name');
  if (!c) fail('no function names (link with --profiling-funcs, keep them with -g)');
  const body = c[1];
  let p = str(body, 0)[1];
  const names = [];
  while (p < body.length) {
    const sub = body[p++];
    const [len, q] = uleb(body, p);
    if (sub === 1) {
      let [n, r] = uleb(body, q);
      while (n--) { r = uleb(body, r)[1]; let s; [s, r] = str(body, r); names.push(s); }
    }
    p = q + len;
  }
  return names;
}
// Rewrite the names of exports (section 7) or imports from module `mod` (section 2) that start
// with '%' through `map`.
function rename(b, id, map, mod) {
  const parts = [b.subarray(0, 8)];
  for (const [sid, body] of sections(b)) {
    let out = body;
    if (sid === id) {
      let [n, p] = uleb(body, 0);
      const items = [uenc(n)];
      while (n--) {
        let m = null, s;
        if (id === 2) { [m, p] = str(body, p); items.push(name(m)); }
        [s, p] = str(body, p);
        if (s[0] === '%' && (id === 7 || m === mod)) {
          if (!map.has(s)) map.set(s, String(map.size));
          s = map.get(s);
        }
        items.push(name(s));
        const end = id === 7 ? uleb(body, p + 1)[1] : desc(body, p);
        items.push(body.subarray(p, end));
        p = end;
      }
      out = Buffer.concat(items);
    }
    parts.push(Buffer.from([sid]), uenc(out.length), out);
  }
  return Buffer.concat(parts);
}

const tmp = mkdtempSync(join(tmpdir(), 'lw-split-'));
try {
  const b = readFileSync(input);
  const all = exportNames(b);
  for (const e of later) if (!all.includes(e)) fail(`no export named ${e}`);
  const first = all.filter((e) => !later.includes(e));
  // The functions the first load's exports reach: kept in the primary.
  const graph = [{ name: 'root', root: true, reaches: first.map((e) => 'e' + e) },
    ...first.map((e) => ({ name: 'e' + e, export: e }))];
  writeFileSync(join(tmp, 'graph.json'), JSON.stringify(graph));
  run('wasm-metadce', ['-g', '-f', join(tmp, 'graph.json'), input, '-o', join(tmp, 'first.wasm')]);
  const keep = functionNames(readFileSync(join(tmp, 'first.wasm')));
  for (const e of later) if (keep.includes('lw_w_' + e)) fail(`export ${e} is reached from the first load`);
  writeFileSync(join(tmp, 'keep.txt'), keep.join('\n') + '\n');
  run('wasm-split', ['-g', input, '--keep-funcs=@' + join(tmp, 'keep.txt'), '-o1', join(tmp, 'p.wasm'),
    '-o2', join(tmp, 's.wasm'), '--export-prefix=%', '--placeholder-namespace=p', '--import-namespace=x']);
  for (const m of ['p', 's']) run('wasm-opt', ['-Oz', '--strip-debug', '--strip-producers', join(tmp, m + '.wasm'), '-o', join(tmp, m + '.opt')]);
  const map = new Map();
  writeFileSync(join(tmp, 'p.named'), rename(readFileSync(join(tmp, 'p.opt')), 7, map));
  const s = rename(readFileSync(join(tmp, 's.opt')), 2, map, 'x');
  // Every name the secondary imports from the primary is one the primary exports.
  const exported = new Set(exportNames(readFileSync(join(tmp, 'p.named'))));
  for (const v of map.values()) if (!exported.has(v)) fail(`the secondary imports ${v}, which the primary does not export`);
  writeFileSync(secondary, s);
  execFileSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'join-data.mjs'), join(tmp, 'p.named'), primary], { stdio: 'inherit' });
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
