// join-data.test.mjs: src/wasm/join-data.mjs puts a module's data into one segment and leaves
// its memory after instantiation byte for byte the same; it refuses segments it cannot join.
//
//   node --test tests/wasm/join-data.test.mjs      (the last case after: bash src/scripts/build.sh)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tool = join(root, 'src/wasm/join-data.mjs');

const uleb = (n) => { const o = []; do { let x = n & 0x7f; n >>>= 7; if (n) x |= 0x80; o.push(x); } while (n); return o; };
const sleb = (n) => {
  const o = [];
  for (;;) {
    const x = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(x & 0x40)) || (n === -1 && x & 0x40)) return [...o, x];
    o.push(x | 0x80);
  }
};
const section = (id, body) => [id, ...uleb(body.length), ...body];
const name = (s) => [...uleb(s.length), ...Buffer.from(s)];
// A module with one exported memory page and these data segments ([offset, bytes] or, for
// `passive`, [null, bytes]); its data section runs both ways through the data count section.
function module(segments) {
  const data = [...uleb(segments.length)];
  for (const [off, bytes] of segments) {
    if (off === null) data.push(1, ...uleb(bytes.length), ...bytes);
    else data.push(0, 0x41, ...sleb(off), 0x0b, ...uleb(bytes.length), ...bytes);
  }
  return Uint8Array.from([
    0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(5, [1, 0, 1]),
    ...section(7, [1, ...name('memory'), 2, 0]),
    ...section(12, uleb(segments.length)),
    ...section(11, data),
  ]);
}
const memoryOf = async (bytes) => new Uint8Array((await WebAssembly.instantiate(bytes, {})).instance.exports.memory.buffer);
// The data segments of a module: how many.
function segmentCount(bytes) {
  let p = 8;
  const rd = () => { let r = 0, s = 0, x; do { x = bytes[p++]; r += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80); return r; };
  while (p < bytes.length) {
    const id = bytes[p++], len = rd(), start = p;
    if (id === 11) return rd();
    p = start + len;
  }
  return 0;
}

function run(bytes) {
  const dir = mkdtempSync(join(tmpdir(), 'lw-join-'));
  try {
    writeFileSync(join(dir, 'in.wasm'), bytes);
    const r = spawnSync(process.execPath, [tool, join(dir, 'in.wasm'), join(dir, 'out.wasm')], { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr, out: r.status === 0 ? new Uint8Array(readFileSync(join(dir, 'out.wasm'))) : null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('segments_become_one_and_memory_is_the_same', async () => {
  // Offsets that take one, two and three LEB bytes, 64 being the first whose sign bit needs two;
  // the joined segment starts at the lowest (16, then 64).
  for (const first of [16, 64]) {
    const m = module([[first, [1, 2, 3]], [70, [4, 5]], [300, [6]], [20000, [7, 8, 9, 10]]]);
    const r = run(m);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(segmentCount(m), 4);
    assert.equal(segmentCount(r.out), 1);
    assert.deepEqual(await memoryOf(r.out), await memoryOf(m), `from ${first}`);
  }
});

test('a_module_with_one_segment_is_written_back_unchanged', () => {
  const m = module([[1024, [1, 2, 3]]]);
  const r = run(m);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.out, m);
});

test('a_passive_segment_is_refused_with_the_reason', () => {
  const r = run(module([[16, [1]], [null, [2]]]));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /join-data\.mjs: .*in\.wasm: a data segment that is not active with a constant offset/);
});

const shipped = join(root, 'build/wasm/src/wasm/loopwise.wasm');
test('the_shipped_module_has_one_data_segment', { skip: !existsSync(shipped) && 'build the WASM first' }, () => {
  assert.equal(segmentCount(new Uint8Array(readFileSync(shipped))), 1);
});
