// The module's own allocator (src/wasm/alloc.c) through its exports, on the test module:
// live blocks never overlap and stay 16-aligned under random malloc/free, a repeated workload
// reuses freed blocks instead of growing memory, a request too large to serve returns 0 and
// leaves the heap as it was, and realloc keeps a block that still fits its class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../cases/run-cases.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';

// The test module: the shipped one plus heap_used (src/wasm/test_exports.c), same allocator.
const wasm = await WebAssembly.compile(readFileSync(join(root, process.env.LW_TEST_WASM || 'build/wasm/src/wasm/loopwise-test.wasm')));
const config = compileConfig(readFileSync(join(root, 'models/referral.json'), 'utf8'));

// A fresh module instance: a fresh heap.
async function instance() {
  const x = (await WebAssembly.instantiate(wasm, {})).exports;
  if (x._initialize) x._initialize();
  return x;
}

// mulberry32: small, seeded, the same sequence on every run.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Sizes from 1 B to 100 KB, log-uniform so that small blocks (the common case) dominate
// while every class up to 128 KB still comes up.
const randomSize = (rnd) => Math.max(1, Math.floor(Math.exp(rnd() * Math.log(100 * 1024))));

// Each block is filled with its own 32-bit id (tail bytes with the id's low byte), so a
// block written over by a neighbour shows a foreign id.
function fill(x, b) {
  const words = b.size >>> 2;
  new Uint32Array(x.memory.buffer, b.p, words).fill(b.id);
  new Uint8Array(x.memory.buffer, b.p + words * 4, b.size & 3).fill(b.id & 0xff);
}
function verify(x, b) {
  const words = b.size >>> 2;
  const w = new Uint32Array(x.memory.buffer, b.p, words);
  for (let i = 0; i < words; i++) {
    if (w[i] !== b.id) assert.fail(`block ${b.id} (${b.size} B at ${b.p}) overwritten at byte ${i * 4}: ${w[i]}`);
  }
  const t = new Uint8Array(x.memory.buffer, b.p + words * 4, b.size & 3);
  for (let i = 0; i < t.length; i++) assert.equal(t[i], b.id & 0xff, `block ${b.id} tail overwritten`);
}

// ops random mallocs and frees (up to about 400 blocks live), every block's pattern checked
// when it is freed; then every live block checked and freed. Returns the blocks it made.
function workload(x, seed, ops) {
  const rnd = prng(seed);
  const live = [];
  let nextId = 1, made = 0;
  for (let i = 0; i < ops; i++) {
    if (live.length && rnd() < (live.length > 400 ? 0.7 : 0.45)) {
      const b = live.splice(Math.floor(rnd() * live.length), 1)[0];
      verify(x, b);
      x.free(b.p);
    } else {
      const b = { size: randomSize(rnd), id: (seed * 0x10000 + nextId++) >>> 0 };
      b.p = x.malloc(b.size) >>> 0;
      assert.notEqual(b.p, 0, `malloc(${b.size}) failed`);
      assert.equal(b.p % 16, 0, `malloc(${b.size}) = ${b.p} is not 16-aligned`);
      fill(x, b);
      live.push(b);
      made++;
    }
  }
  for (const b of live) verify(x, b);
  for (const b of live) x.free(b.p);
  return made;
}

test('random malloc and free never hand out overlapping or misaligned blocks', async () => {
  const x = await instance();
  const before = x.heap_used();
  const made = workload(x, 1, 40000);
  assert.ok(made > 15000, `only ${made} blocks`);
  assert.equal(x.heap_used(), before, 'bytes in use after freeing everything');
});

test('a repeated workload reuses freed blocks and does not grow memory', async () => {
  const x = await instance();
  const initial = x.memory.buffer.byteLength;
  workload(x, 2, 20000);
  const grown = x.memory.buffer.byteLength;
  assert.ok(grown > initial, 'the workload is big enough to grow memory once');
  for (let round = 0; round < 3; round++) {
    workload(x, 2, 20000);
    assert.equal(x.memory.buffer.byteLength, grown, `memory grew in round ${round + 2}`);
  }
});

test('malloc(0) gives distinct blocks and free(0) is a no-op', async () => {
  const x = await instance();
  const a = x.malloc(0), b = x.malloc(0);
  assert.ok(a && b && a !== b);
  x.free(0);
  x.free(a);
  x.free(b);
});

test('a request too large to serve returns 0 and leaves the heap intact', async () => {
  const x = await instance();
  const keep = { size: 1000, id: 0xabcdef01 };
  keep.p = x.malloc(keep.size) >>> 0;
  fill(x, keep);
  const used = x.heap_used(), bytes = x.memory.buffer.byteLength;
  // Wasm passes i32: these are the size_t values 0xFFFFFFF0, 0xFFFFFFFF, 2 GB and 1 GB + 1.
  for (const n of [0xfffffff0, 0xffffffff, 0x80000000, 0x40000001]) {
    assert.equal(x.malloc(n | 0), 0, `malloc(${n})`);
  }
  assert.equal(x.heap_used(), used);
  assert.equal(x.memory.buffer.byteLength, bytes);
  verify(x, keep);
  workload(x, 3, 2000); // and the heap still works
  verify(x, keep);
});

test('realloc keeps a block that fits its class and frees it when it moves', async () => {
  // The output buffer is the module's realloc user: lw_w_new reserves 1 KB (the 2 KB class),
  // lw_w_take_batch reserves max_bytes more.
  const x = await instance();
  const h = x.N();
  const enc = new TextEncoder();
  const put = (s) => {
    const b = typeof s === 'string' ? enc.encode(s + '\0') : s;
    const p = x.malloc(b.length);
    new Uint8Array(x.memory.buffer).set(b, p);
    return p;
  };
  const cfg = put(config);
  assert.equal(x.i(h, cfg, config.length, 1, 2, 3, 4), 0);
  x.free(cfg);
  const key = put('demo-site-key');
  const out0 = x.o(h);
  const used0 = x.heap_used();

  x.b(h, key, 1767614400000, 1500); // 1501 B: still the 2 KB class
  assert.equal(x.o(h), out0);
  assert.equal(x.heap_used(), used0);

  x.b(h, key, 1767614400000, 5000); // 5001 B: moves to the 8 KB class
  assert.notEqual(x.o(h), out0);
  assert.equal(x.heap_used(), used0 + 8192 - 2048);
  assert.equal(x.malloc(1500), out0, 'the old 2 KB block is the next 2 KB block handed out');
  x.free(key);
  x.R(h);
});
