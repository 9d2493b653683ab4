// join-data.mjs: rewrite a module's data section as one active segment, zeros filled in.
//
//   node src/wasm/join-data.mjs in.wasm out.wasm      (run by src/wasm/CMakeLists.txt after wasm-opt)
//
// wasm-opt's -Oz includes memory-packing, which splits the data at every run of zeros so the
// zeros are not stored (binaryen 108 has no way to leave that one pass out). For a raw size that
// pays; for the gzip size a page downloads it does not: each of loopwise.wasm's ~60 segments
// costs its own header, and the zeros between them (struct padding in the config schema's
// tables) compress to almost nothing. Measured on loopwise.wasm: 15,698 -> 15,499 B gzip -9
// (+757 B raw). Memory after instantiation is byte for byte the same: the gaps are zeros in a
// fresh memory anyway, and no segment is passive (no memory.init or data.drop refers to one;
// this script refuses any other shape).
import { readFileSync, writeFileSync } from 'node:fs';

const [, , input, output] = process.argv;
const b = readFileSync(input);
let p = 8;
const uleb = () => { let r = 0, s = 0, x; do { x = b[p++]; r += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80); return r; };
const sleb = () => { let r = 0, s = 0, x; do { x = b[p++]; r |= (x & 0x7f) << s; s += 7; } while (x & 0x80); return s < 32 && x & 0x40 ? r | (-1 << s) : r; };
const uenc = (n) => { const o = []; do { let x = n & 0x7f; n = Math.floor(n / 128); if (n) x |= 0x80; o.push(x); } while (n); return Buffer.from(o); };
const senc = (n) => {
  const o = [];
  for (;;) {
    const x = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(x & 0x40)) || (n === -1 && x & 0x40)) return Buffer.from([...o, x]);
    o.push(x | 0x80);
  }
};
const fail = (m) => { console.error(`join-data.mjs: ${input}: ${m}`); process.exit(1); };

if (b.readUInt32LE(0) !== 0x6d736100) fail('not a WebAssembly module');
const parts = [b.subarray(0, 8)];
let joined = false;
while (p < b.length) {
  const at = p, id = b[p++], len = uleb(), start = p;
  if (id === 11) {
    const n = uleb(), segs = [];
    for (let i = 0; i < n; i++) {
      // Only "active, memory 0, offset i32.const k": what wasm-ld writes for a module without threads.
      if (uleb() !== 0 || b[p++] !== 0x41) fail('a data segment that is not active with a constant offset');
      const off = sleb();
      if (b[p++] !== 0x0b) fail('a data segment offset that is not one constant');
      const l = uleb();
      segs.push([off, b.subarray(p, p + l)]);
      p += l;
    }
    if (segs.length > 1) {
      segs.sort((x, y) => x[0] - y[0]);
      const lo = segs[0][0], hi = Math.max(...segs.map(([o, d]) => o + d.length));
      const mem = Buffer.alloc(hi - lo);
      for (const [o, d] of segs) d.copy(mem, o - lo);
      const body = Buffer.concat([uenc(1), Buffer.from([0, 0x41]), senc(lo), Buffer.from([0x0b]), uenc(mem.length), mem]);
      parts.push(Buffer.from([11]), uenc(body.length), body);
      joined = true;
    } else parts.push(b.subarray(at, start + len));
  } else if (id === 12) {
    parts.push(Buffer.from([12, 1, 1])); // the data count section: now one segment
  } else {
    parts.push(b.subarray(at, start + len));
  }
  p = start + len;
}
// A module that declared a data count kept it consistent above; one with no data section at all
// is written back unchanged.
writeFileSync(output, joined ? Buffer.concat(parts) : b);
